#include "ports.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <string.h>

#include "../sandbox/util.h"

/* The kernel's socket tables, asked by sock_diag for the one state that
 * matters (TCP: LISTEN; UDP: unconnected, TCP_CLOSE): for TCP it then
 * walks only its listening hash, so the answer costs the same on a host
 * with a hundred thousand connections in TIME_WAIT as on an idle one.
 * /proc/net/tcp lists every socket, and reading it blocked gend's loop
 * for as long as that took. */
struct found {
        uint16_t port;                  /* network order */
        bool hit;
        unsigned long inode;
        char addr[INET6_ADDRSTRLEN];
};

static int on_sock(struct nl_msg *msg, void *arg) {
        struct found *f = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        const struct inet_diag_msg *m;

        if (f->hit || h->nlmsg_type != SOCK_DIAG_BY_FAMILY || nlmsg_datalen(h) < (int)sizeof(*m))
                return NL_OK;
        m = nlmsg_data(h);
        if (m->id.idiag_sport != f->port)
                return NL_OK;
        f->hit = true;
        f->inode = m->idiag_inode;
        if (!inet_ntop(m->idiag_family, m->id.idiag_src, f->addr, sizeof(f->addr)))
                snprintf(f->addr, sizeof(f->addr), "?");
        return NL_OK;
}

/* The first socket of family and proto on port in state: 1, 0 if none. */
static int diag_find(int family, int proto, uint16_t port, struct found *f) {
        struct inet_diag_req_v2 req = {
                .sdiag_family = (uint8_t)family,
                .sdiag_protocol = (uint8_t)proto,
                .idiag_states = 1u << (proto == IPPROTO_UDP ? TCP_CLOSE : TCP_LISTEN),
        };
        struct nl_sock *sk = nl_socket_alloc();
        int r;

        if (!sk)
                return err_set(ENOMEM, "nl_socket_alloc");
        *f = (struct found){ .port = htons(port) };
        if ((r = nl_connect(sk, NETLINK_SOCK_DIAG)) < 0) {
                r = err_setx(EIO, "nl_connect(NETLINK_SOCK_DIAG): %s", nl_geterror(r));
                goto out;
        }
        nl_socket_disable_auto_ack(sk);
        nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_sock, f);
        if ((r = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &req, sizeof(req))) < 0 ||
            (r = nl_recvmsgs_default(sk)) < 0) {
                /* No IPv6 in this kernel: no IPv6 socket holds the port. */
                r = family == AF_INET6 && r == -NLE_OBJ_NOTFOUND ? 0 :
                    err_setx(EIO, "sock_diag dump (%s %s): %s", family == AF_INET6 ? "IPv6" : "IPv4",
                             proto == IPPROTO_UDP ? "UDP" : "TCP", nl_geterror(r));
                goto out;
        }
        r = f->hit;
out:
        nl_socket_free(sk);
        return r;
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
        for (int v6 = 0; v6 < 2; v6++) {
                char comm[64] = "?";
                struct found f;
                pid_t pid;
                int r = diag_find(v6 ? AF_INET6 : AF_INET, proto, port, &f);

                if (r <= 0) {
                        if (r < 0)
                                return r;
                        continue;
                }
                pid = inode_owner(f.inode, comm, sizeof(comm));
                if (pid)
                        snprintf(buf, n, "pid %d (%s) %s on %s%s%s:%u", (int)pid, comm,
                                 proto == IPPROTO_UDP ? "is bound" : "listens", v6 ? "[" : "",
                                 f.addr, v6 ? "]" : "", port);
                else
                        snprintf(buf, n, "a socket %s on %s%s%s:%u (inode %lu, its process not "
                                 "found)", proto == IPPROTO_UDP ? "is bound" : "listens",
                                 v6 ? "[" : "", f.addr, v6 ? "]" : "", port, f.inode);
                return 1;
        }
        return 0;
}
