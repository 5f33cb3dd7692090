/* gen-init: what the first process of a generation execs once it has
 * started the server (spawn.c): a few pages instead of a copy of gend, so
 * memory pressure in the generation never picks it. argv[1] is the
 * server's pid; every signal arrives blocked. */
#include <stdlib.h>
#include <sys/prctl.h>

#include "init.h"

int main(int argc, char **argv) {
        if (argc != 2 || atoi(argv[1]) <= 0)
                return 127;
        prctl(PR_SET_NAME, "gen-init", 0, 0, 0);       /* not the fd number execveat gives */
        init_run((pid_t)atoi(argv[1]));
}
