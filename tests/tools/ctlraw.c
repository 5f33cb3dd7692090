/* Sends its standard input to a Unix socket as it is and prints what comes
 * back: how the tests send gend requests that gen never would. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[65536];
        ssize_t n;
        int fd;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path))
                return 2;
        strcpy(sa.sun_path, argv[1]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("ctlraw: connect");
                return 1;
        }
        while ((n = read(0, buf, sizeof(buf))) > 0)
                if (send(fd, buf, n, MSG_NOSIGNAL) != n)
                        break;
        shutdown(fd, SHUT_WR);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                fwrite(buf, 1, n, stdout);
        return 0;
}
