#pragma once
#include <syslog.h>

#include "../sandbox/util.h"

/* gend's log, on standard error. When standard error is the journal
 * (JOURNAL_STREAM names it), each line starts with its syslog priority,
 * "<3>", "<4>", "<6>", as sd-daemon(3) describes, so journald records the
 * level; elsewhere (a terminal, a file) lines carry a timestamp. */
void log_msg(int priority, const char *fmt, ...) _printf_(2, 3);
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
