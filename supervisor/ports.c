#include "ports.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <string.h>

#include "../sandbox/util.h"

/* The kernel prints each 32-bit word of the address as a number in host
 * order: read it back as one, and the bytes in memory are right again. */
static void hex_addr(const char *hex, bool ipv6, char *buf, size_t n) {
        uint32_t w[4];
        char word[9];

        for (int i = 0; i < (ipv6 ? 4 : 1); i++) {
                memcpy(word, hex + 8 * i, 8);
                word[8] = 0;
                w[i] = (uint32_t)strtoul(word, NULL, 16);
        }
        if (!inet_ntop(ipv6 ? AF_INET6 : AF_INET, w, buf, n))
                snprintf(buf, n, "?");
}

int port_find_in_table(const char *table, uint16_t port, const char *state, bool ipv6,
                       unsigned long *ret_inode, char *addr, size_t n) {
        for (const char *l = table; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char local[64], st[8];
                unsigned p;
                unsigned long inode;
                /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
                if (sscanf(l, " %*s %63[0-9A-Fa-f]:%x %*s %7s %*s %*s %*s %*u %*u %lu", local, &p,
                           st, &inode) != 4)
                        continue;
                if (p != port || strcasecmp(st, state) != 0)
                        continue;
                hex_addr(local, ipv6, addr, n);
                *ret_inode = inode;
                return 1;
        }
        return 0;
}

/* The process that has socket inode open: a walk of /proc/<pid>/fd. */
static pid_t inode_owner(unsigned long inode, char *comm, size_t n) {
        char want[64], path[600], link[64];
        struct dirent *p, *f;
        DIR *proc = opendir("/proc");
        pid_t found = 0;

        snprintf(want, sizeof(want), "socket:[%lu]", inode);
        while (proc && !found && (p = readdir(proc))) {
                DIR *fds;
                if (p->d_name[0] < '0' || p->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
                if (!(fds = opendir(path)))
                        continue;
                while ((f = readdir(fds))) {
                        ssize_t len;
                        snprintf(path, sizeof(path), "/proc/%s/fd/%s", p->d_name, f->d_name);
                        len = readlink(path, link, sizeof(link) - 1);
                        if (len <= 0)
                                continue;
                        link[len] = 0;
                        if (strcmp(link, want) == 0) {
                                found = (pid_t)atoi(p->d_name);
                                break;
                        }
                }
                closedir(fds);
        }
        if (proc)
                closedir(proc);
        if (found) {
                _cleanup_free_ char *txt = NULL;
                snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
                if (read_file(path, &txt, NULL) >= 0) {
                        txt[strcspn(txt, "\n")] = 0;
                        snprintf(comm, n, "%s", txt);
                }
        }
        return found;
}

int port_holder(int proto, uint16_t port, char *buf, size_t n) {
        static const char *const tcp[] = { "/proc/net/tcp", "/proc/net/tcp6" };
        static const char *const udp[] = { "/proc/net/udp", "/proc/net/udp6" };
        const char *const *files = proto == IPPROTO_UDP ? udp : tcp;

        for (int v6 = 0; v6 < 2; v6++) {
                _cleanup_free_ char *table = NULL;
                char addr[64], comm[64] = "?";
                unsigned long inode;
                pid_t pid;

                if (read_file(files[v6], &table, NULL) < 0) {
                        if (errno == ENOENT)
                                continue;       /* no IPv6 */
                        return -errno;
                }
                if (port_find_in_table(table, port, proto == IPPROTO_UDP ? "07" : "0A", v6, &inode,
                                       addr, sizeof(addr)) <= 0)
                        continue;
                pid = inode_owner(inode, comm, sizeof(comm));
                if (pid)
                        snprintf(buf, n, "pid %d (%s) %s on %s%s%s:%u", (int)pid, comm,
                                 proto == IPPROTO_UDP ? "is bound" : "listens", v6 ? "[" : "",
                                 addr, v6 ? "]" : "", port);
                else
                        snprintf(buf, n, "a socket %s on %s%s%s:%u (inode %lu, its process not "
                                 "found)", proto == IPPROTO_UDP ? "is bound" : "listens",
                                 v6 ? "[" : "", addr, v6 ? "]" : "", port, inode);
                return 1;
        }
        return 0;
}
