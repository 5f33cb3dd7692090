/* Pid 1 of a generation's PID namespace: the generation's first process,
 * made by spawn.c, which execs the small static gen-init (init_main.c)
 * once the server is started, or runs this same code itself when gen-init
 * is not there. It passes every signal it gets on to the server, reaps every process
 * orphaned in the namespace, and exits with the server's status when the
 * server exits, which ends the namespace and everything left in it: gend
 * sees one main process, as before. Once gend has signalled it (a drain's
 * stop-signal), it outlives the server until the last process in the
 * namespace is gone, so background tasks of a draining generation finish. */
#pragma once

#include <sys/types.h>

/* Pure: the exit code that carries a wait status, as a shell reports it:
 * the code, or 128 + the signal that ended the server. */
int init_exit_code(int wstatus);
/* Every signal must be blocked (the server was forked with them blocked). */
_Noreturn void init_run(pid_t server);
