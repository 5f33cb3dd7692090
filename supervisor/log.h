#pragma once
#include "../sandbox/util.h"

void log_msg(const char *level, const char *fmt, ...) _printf_(2, 3);
#define log_info(...) log_msg("", __VA_ARGS__)
#define log_warn(...) log_msg("warning: ", __VA_ARGS__)
#define log_error(...) log_msg("error: ", __VA_ARGS__)
