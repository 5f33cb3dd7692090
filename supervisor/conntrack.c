#include "conntrack.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netlink/netfilter/ct.h>
#include <netlink/netfilter/nfnl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../sandbox/naming.h"
#include "../sandbox/util.h"

struct ct {
        struct nl_sock *sk;
};

int ct_open(struct ct **ret) {
        struct ct *c = calloc(1, sizeof(*c));
        int r;

        if (!c || !(c->sk = nl_socket_alloc())) {
                free(c);
                return err_set(ENOMEM, "nl_socket_alloc");
        }
        r = nfnl_connect(c->sk);
        if (r < 0) {
                nl_socket_free(c->sk);
                free(c);
                return err_setx(EIO, "nfnl_connect(NETLINK_NETFILTER): %s", nl_geterror(r));
        }
        *ret = c;
        return 0;
}

void ct_close(struct ct *c) {
        if (c) {
                nl_socket_free(c->sk);
                free(c);
        }
}

struct walk {
        struct ct *c;
        uint32_t mark, mask;
        const struct marks *marks;      /* counts by block, else all in counts[0] */
        unsigned *counts;
        unsigned n_counts;
        bool collect;                   /* keep the entries, to delete them */
        int proto;                      /* collect only these, 0: all */
        struct nfnl_ct **found;
        unsigned n_found, cap_found;
        struct ct_ids *ids;             /* the live ones' ids, instead of counts */
        bool nomem;
};

static bool live(struct nfnl_ct *ct) {
        int state = nfnl_ct_get_tcp_state(ct);
        return nfnl_ct_get_proto(ct) != IPPROTO_TCP ||
               (state != TCP_CONNTRACK_TIME_WAIT && state != TCP_CONNTRACK_CLOSE);
}

static int on_entry(struct nl_msg *msg, void *arg) {
        struct walk *w = arg;
        struct nfnl_ct *ct = NULL;
        uint32_t mark;

        if (nfnlmsg_ct_parse(nlmsg_hdr(msg), &ct) < 0)
                return NL_SKIP;
        mark = nfnl_ct_get_mark(ct);
        /* The kernel filtered by mark; check again for old kernels. */
        if ((mark & w->mask) == w->mark) {
                if (w->collect) {
                        if (!w->proto || nfnl_ct_get_proto(ct) == w->proto) {
                                if (GROW(w->found, w->n_found, w->cap_found, 64) < 0) {
                                        w->nomem = true;
                                        nfnl_ct_put(ct);
                                        return NL_STOP;
                                }
                                w->found[w->n_found++] = ct;
                                ct = NULL;
                        }
                } else if (live(ct) && w->ids) {
                        if (ct_ids_add(w->ids, nfnl_ct_get_id(ct)) < 0) {
                                w->nomem = true;
                                nfnl_ct_put(ct);
                                return NL_STOP;
                        }
                } else if (live(ct)) {
                        int i = w->marks ? marks_block(w->marks, mark) : 0;
                        if (i >= 0 && (unsigned)i < w->n_counts)
                                w->counts[i]++;
                }
        }
        if (ct)
                nfnl_ct_put(ct);
        return NL_OK;
}

static int dump(struct walk *w) {
        struct nl_msg *msg = nfnlmsg_alloc_simple(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET,
                                                  NLM_F_DUMP, AF_INET, 0);
        int r;

        if (!msg)
                return err_set(ENOMEM, "nfnlmsg_alloc_simple");
        if (nla_put_u32(msg, CTA_MARK, htonl(w->mark)) < 0 ||
            nla_put_u32(msg, CTA_MARK_MASK, htonl(w->mask)) < 0) {
                nlmsg_free(msg);
                return err_set(ENOMEM, "nla_put");
        }
        nl_socket_modify_cb(w->c->sk, NL_CB_VALID, NL_CB_CUSTOM, on_entry, w);
        r = nl_send_auto(w->c->sk, msg);
        nlmsg_free(msg);
        if (r >= 0)
                r = nl_recvmsgs_default(w->c->sk);
        if (r < 0)
                return err_setx(EIO, "conntrack dump (mark 0x%08x/0x%08x): %s", w->mark, w->mask,
                                nl_geterror(r));
        return 0;
}

int ct_count_live(struct ct *c, uint32_t mark, uint32_t mask, unsigned *ret) {
        unsigned n = 0;
        struct walk w = { .c = c, .mark = mark, .mask = mask, .counts = &n, .n_counts = 1 };
        int r = dump(&w);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

int ct_live_ids(struct ct *c, uint32_t mark, uint32_t mask, struct ct_ids *ret) {
        struct ct_ids ids = {};
        struct walk w = { .c = c, .mark = mark, .mask = mask, .ids = &ids };
        int r = dump(&w);

        if (r >= 0 && w.nomem)
                r = err_set(ENOMEM, "conntrack dump");
        if (r < 0) {
                ct_ids_clear(&ids);
                return r;
        }
        ct_ids_clear(ret);
        *ret = ids;
        return 0;
}

/* Where id is, or would go. */
static unsigned ids_find(const struct ct_ids *s, uint32_t id) {
        unsigned lo = 0, hi = s->n;

        while (lo < hi) {
                unsigned mid = lo + (hi - lo) / 2;
                if (s->v[mid] < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

bool ct_ids_has(const struct ct_ids *s, uint32_t id) {
        unsigned i = ids_find(s, id);
        return i < s->n && s->v[i] == id;
}

int ct_ids_add(struct ct_ids *s, uint32_t id) {
        unsigned i = ids_find(s, id);

        if (i < s->n && s->v[i] == id)
                return 0;
        if (GROW(s->v, s->n, s->cap, 16) < 0)
                return err_set(ENOMEM, "connection set");
        memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
        s->v[i] = id;
        s->n++;
        return 1;
}

bool ct_ids_del(struct ct_ids *s, uint32_t id) {
        unsigned i = ids_find(s, id);

        if (i == s->n || s->v[i] != id)
                return false;
        memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
        s->n--;
        return true;
}

void ct_ids_clear(struct ct_ids *s) {
        free(s->v);
        *s = (struct ct_ids){};
}

int ct_count_live_by_block(struct ct *c, const struct marks *m, unsigned *counts, unsigned n) {
        /* One walk for all: the kernel cannot filter "any value in the field". */
        struct walk w = { .c = c, .mark = 0, .mask = 0, .marks = m, .counts = counts,
                          .n_counts = n };
        memset(counts, 0, n * sizeof(*counts));
        return dump(&w);
}

static uint32_t addr_of(struct nl_addr *a) {
        uint32_t v = 0;
        if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4)
                memcpy(&v, nl_addr_get_binary_addr(a), 4);
        return ntohl(v);
}

int ct_list_live(struct ct *c, uint32_t mark, uint32_t mask, struct ct_conn *out, unsigned max,
                 unsigned *ret_n, unsigned *ret_total) {
        struct walk w = { .c = c, .mark = mark, .mask = mask, .collect = true };
        unsigned n = 0, total = 0;
        int r = dump(&w);

        if (r >= 0 && w.nomem)
                r = err_set(ENOMEM, "conntrack dump (mark 0x%x/0x%x)", mark, mask);
        for (unsigned i = 0; i < w.n_found; i++) {
                struct nfnl_ct *ct = w.found[i];
                if (r >= 0 && live(ct) && total++ < max) {
                        struct ct_conn *o = &out[n++];
                        *o = (struct ct_conn){ .proto = nfnl_ct_get_proto(ct),
                                               .src = addr_of(nfnl_ct_get_src(ct, 0)),
                                               .dst = addr_of(nfnl_ct_get_dst(ct, 0)),
                                               .sport = nfnl_ct_get_src_port(ct, 0),
                                               .dport = nfnl_ct_get_dst_port(ct, 0) };
                        if (o->proto == IPPROTO_TCP)
                                nfnl_ct_tcp_state2str(nfnl_ct_get_tcp_state(ct), o->state,
                                                      sizeof(o->state));
                }
                nfnl_ct_put(ct);
        }
        free(w.found);
        if (r >= 0) {
                *ret_n = n;
                *ret_total = total;
        }
        return r;
}

int ct_delete(struct ct *c, uint32_t mark, uint32_t mask, int proto, unsigned *ret_deleted) {
        struct walk w = { .c = c, .mark = mark, .mask = mask, .collect = true, .proto = proto };
        unsigned deleted = 0;
        int r = dump(&w);

        if (r >= 0 && w.nomem)
                r = err_set(ENOMEM, "conntrack dump (mark 0x%x/0x%x)", mark, mask);
        for (unsigned i = 0; i < w.n_found; i++) {
                if (r >= 0) {
                        int d = nfnl_ct_del(c->sk, w.found[i], 0);
                        if (d >= 0)
                                deleted++;
                        else if (d != -NLE_OBJ_NOTFOUND)
                                r = err_setx(EIO, "nfnl_ct_del (mark 0x%x/0x%x): %s", mark, mask,
                                             nl_geterror(d));
                }
                nfnl_ct_put(w.found[i]);
        }
        free(w.found);
        if (r >= 0)
                *ret_deleted = deleted;
        return r;
}

struct ct_events {
        struct nl_sock *sk;
        uint32_t mask;
        bool following;                 /* in the update group */
        ct_event_fn fn;
        void *userdata;
};

static int on_event(struct nl_msg *msg, void *arg) {
        struct ct_events *e = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        struct nfnl_ct *ct = NULL;
        struct ct_event ev;

        if (nfnlmsg_ct_parse(h, &ct) < 0)
                return NL_SKIP;
        ev = (struct ct_event){
                .mark = nfnl_ct_get_mark(ct), .id = nfnl_ct_get_id(ct),
                .proto = nfnl_ct_get_proto(ct),
                .gone = NFNL_MSG_TYPE(h->nlmsg_type) == IPCTNL_MSG_CT_DELETE,
        };
        ev.state_known = ev.proto != IPPROTO_TCP || nfnl_ct_test_tcp_state(ct);
        ev.live = !ev.gone && ev.state_known && live(ct);
        e->fn(&ev, e->userdata);
        nfnl_ct_put(ct);
        return NL_OK;
}

/* Keeps the events whose CTA_MARK, masked, is one of marks[]: the
 * attributes follow the netlink and nfnetlink headers (16 + 4 bytes);
 * SKF_AD_NLATTR finds one by type, and a word load reads it in network
 * order. With more marks than one jump reaches, any mark bit in mask
 * will do (the caller drops the rest). */
#define FILTER_MARKS_MAX 240
static int attach_filter(int fd, uint32_t mask, const uint32_t *marks, unsigned n) {
        struct sock_filter code[8 + FILTER_MARKS_MAX + 1];
        unsigned k = 0, any = n > FILTER_MARKS_MAX, m = any ? 1 : n;
        struct sock_fprog prog = { .filter = code };

        code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_IMM, 20);
        code[k++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_IMM, CTA_MARK);
        code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_NLATTR);
        code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3 + m, 0); /* no mark */
        code[k++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
        code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_IND, 4); /* after nla_len, nla_type */
        code[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, mask);
        if (any)
                code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
        for (unsigned i = 0; !any && i < n; i++)
                code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, marks[i] & mask,
                                                         n - i, 0);
        code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
        code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
        prog.len = k;
        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
                return err_set(errno, "setsockopt(SO_ATTACH_FILTER, conntrack events)");
        return 0;
}

/* The socket joins the destroy group for good: with
 * net.netfilter.nf_conntrack_events = 2 the kernel gives an entry an event
 * cache only while a socket is in one of the conntrack groups (new,
 * update, destroy: the expectation groups do not count, nfnetlink_bind)
 * as it is made, so every entry can be followed later. The filter drops
 * every destroy event in the kernel until a drain follows a mark, and the
 * update group, five or six events per connection (9% of the CPU under new
 * connections), is joined only while a drain follows one. */
int ct_events_open(uint32_t mask, ct_event_fn fn, void *userdata, struct ct_events **ret) {
        struct ct_events *e = calloc(1, sizeof(*e));
        int r;

        if (!e || !(e->sk = nl_socket_alloc())) {
                free(e);
                return err_set(ENOMEM, "nl_socket_alloc");
        }
        e->fn = fn;
        e->userdata = userdata;
        e->mask = mask;
        nl_socket_disable_seq_check(e->sk);
        nl_socket_modify_cb(e->sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, e);
        if ((r = nfnl_connect(e->sk)) < 0 ||
            (r = nl_socket_add_memberships(e->sk, NFNLGRP_CONNTRACK_DESTROY, 0)) < 0 ||
            (r = nl_socket_set_nonblocking(e->sk)) < 0 ||
            (r = nl_socket_set_buffer_size(e->sk, 1 << 20, 0)) < 0) {
                ct_events_close(e);
                return err_setx(EIO, "conntrack events (NFNLGRP_CONNTRACK_DESTROY): %s",
                                nl_geterror(r));
        }
        if ((r = attach_filter(nl_socket_get_fd(e->sk), mask, NULL, 0)) < 0) {
                ct_events_close(e);
                return r;
        }
        *ret = e;
        return 0;
}

/* The filter first: what the groups bring from then on is all wanted. */
int ct_events_follow(struct ct_events *e, const uint32_t *marks, unsigned n) {
        int r;

        if ((r = attach_filter(nl_socket_get_fd(e->sk), e->mask, marks, n)) < 0)
                return r;
        if (n > 0 && !e->following)
                r = nl_socket_add_memberships(e->sk, NFNLGRP_CONNTRACK_UPDATE, 0);
        else if (n == 0 && e->following)
                r = nl_socket_drop_memberships(e->sk, NFNLGRP_CONNTRACK_UPDATE, 0);
        if (r < 0)
                return err_setx(EIO, "conntrack events (NFNLGRP_CONNTRACK_UPDATE): %s",
                                nl_geterror(r));
        e->following = n > 0;
        return 0;
}

int ct_events_fd(const struct ct_events *e) {
        return nl_socket_get_fd(e->sk);
}

int ct_events_read(struct ct_events *e) {
        for (;;) {
                int r = nl_recvmsgs_default(e->sk);
                if (r == -NLE_AGAIN)
                        return 0;
                if (r == -NLE_NOMEM)    /* ENOBUFS: the socket overflowed */
                        return -ENOBUFS;
                if (r < 0)
                        return err_setx(EIO, "conntrack events: %s", nl_geterror(r));
        }
}

void ct_events_close(struct ct_events *e) {
        if (e) {
                nl_socket_free(e->sk);
                free(e);
        }
}
