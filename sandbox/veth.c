#include "veth.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/cache.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns.h"
#include "util.h"

#define GEN_IF "eth0"

static void nl_sock_freep(struct nl_sock **s) { if (*s) nl_socket_free(*s); }
static void rtnl_link_putp(struct rtnl_link **l) { if (*l) rtnl_link_put(*l); }
static void rtnl_veth_releasep(struct rtnl_link **l) { if (*l) rtnl_link_veth_release(*l); }
static void rtnl_addr_putp(struct rtnl_addr **a) { if (*a) rtnl_addr_put(*a); }
static void rtnl_route_putp(struct rtnl_route **r) { if (*r) rtnl_route_put(*r); }
static void nl_addr_putp(struct nl_addr **a) { if (*a) nl_addr_put(*a); }

static int nl_fail(int nlerr, const char *what, const char *obj) {
        return err_setx(EIO, "%s(%s): %s", what, obj, nl_geterror(nlerr));
}

static int route_socket(struct nl_sock **ret) {
        struct nl_sock *sk = nl_socket_alloc();
        int r;

        if (!sk)
                return err_set(ENOMEM, "nl_socket_alloc");
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return nl_fail(r, "nl_connect", "NETLINK_ROUTE");
        }
        *ret = sk;
        return 0;
}

static void nlmsg_freep(struct nl_msg **m) { if (*m) nlmsg_free(*m); }
static void rtnl_neigh_putp(struct rtnl_neigh **n) { if (*n) rtnl_neigh_put(*n); }

static int ifindex_of(const char *name, int *ret) {
        unsigned i = if_nametoindex(name);

        if (i == 0)
                return err_set(errno, "if_nametoindex(%s)", name);
        *ret = (int)i;
        return 0;
}

/* IFF_UP and nothing else (ifi_change names the flag): one message, the
 * link is not asked for first. */
static int link_up(struct nl_sock *sk, int ifindex, const char *name) {
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex,
                                 .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
        _cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, 0);
        int r;

        if (!msg || nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
                return err_set(ENOMEM, "nlmsg_alloc_simple");
        r = nl_send_sync(sk, TAKE_PTR(msg));
        return r < 0 ? nl_fail(r, "RTM_NEWLINK(up)", name) : 0;
}

/* Up is not yet running: the kernel activates a link's queue later, from
 * its link watch (delayed when rtnl is busy), and until then drops what is
 * sent; a probe would then meet "no route to host". Waits, bounded, until
 * the link is operationally up. */
#define RUNNING_WAIT_MS 2000
#define OPER_UP 6               /* IF_OPER_UP of <linux/if.h>, which clashes with <net/if.h> */
static int link_wait_running(struct nl_sock *sk, const char *name) {
        for (int ms = 0;; ms += 2) {
                _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
                int r = rtnl_link_get_kernel(sk, 0, name, &link);

                if (r < 0)
                        return nl_fail(r, "rtnl_link_get_kernel", name);
                if (rtnl_link_get_operstate(link) == OPER_UP)
                        return 0;
                if (ms >= RUNNING_WAIT_MS)
                        return err_setx(ETIMEDOUT, "link %s is up but not running after %d ms "
                                        "(operstate %u)", name, RUNNING_WAIT_MS,
                                        rtnl_link_get_operstate(link));
                usleep(2000);
        }
}

static const char *ip4(uint32_t ip, char buf[16]) {
        uint32_t be = htonl(ip);
        return inet_ntop(AF_INET, &be, buf, 16);
}

static int addr_add(struct nl_sock *sk, int ifindex, const char *ifname, uint32_t ip) {
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
        uint32_t be = htonl(ip);
        char obj[64], s[16];
        int r;

        if (!a || !(local = nl_addr_build(AF_INET, &be, 4)))
                return err_set(ENOMEM, "rtnl_addr_alloc");
        nl_addr_set_prefixlen(local, 30);
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_local(a, local);
        r = rtnl_addr_add(sk, a, 0);
        if (r < 0) {
                snprintf(obj, sizeof(obj), "%s/30 on %s", ip4(ip, s), ifname);
                return nl_fail(r, "rtnl_addr_add", obj);
        }
        return 0;
}

/* A link's MAC, made from its IPv4 address (unique on this host, as the
 * address is): locally administered, unicast, 02:67 and the address. Both
 * ends' are known before the pair exists. */
static struct nl_addr *mac_of(uint32_t ip) {
        uint8_t mac[6] = { 0x02, 0x67, ip >> 24, ip >> 16, ip >> 8, ip };
        return nl_addr_build(AF_LLC, mac, sizeof(mac));
}

/* The other end's MAC for ip on this link, permanent: no ARP across the
 * pair, and no entry in the kernel's neighbour table, which is one for
 * all namespaces and refuses entries past gc_thresh3 (1024 by default),
 * since permanent ones do not count against it. */
static int neigh_add(struct nl_sock *sk, int ifindex, const char *ifname, uint32_t ip) {
        _cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = rtnl_neigh_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *dst = NULL, *mac = mac_of(ip);
        uint32_t be = htonl(ip);
        char obj[64], s[16];
        int r;

        if (!n || !mac || !(dst = nl_addr_build(AF_INET, &be, 4)))
                return err_set(ENOMEM, "rtnl_neigh_alloc");
        rtnl_neigh_set_family(n, AF_INET);
        rtnl_neigh_set_ifindex(n, ifindex);
        rtnl_neigh_set_dst(n, dst);
        rtnl_neigh_set_lladdr(n, mac);
        rtnl_neigh_set_state(n, NUD_PERMANENT);
        r = rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE);
        if (r < 0) {
                snprintf(obj, sizeof(obj), "%s on %s", ip4(ip, s), ifname);
                return nl_fail(r, "rtnl_neigh_add(permanent)", obj);
        }
        return 0;
}

static int default_route(struct nl_sock *sk, int ifindex, uint32_t gw) {
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = rtnl_route_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *dst = NULL, *via = NULL;
        struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
        uint32_t zero = 0, be = htonl(gw);
        int r;

        if (!rt || !nh || !(dst = nl_addr_build(AF_INET, &zero, 4)) ||
            !(via = nl_addr_build(AF_INET, &be, 4))) {
                if (nh)
                        rtnl_route_nh_free(nh);
                return err_set(ENOMEM, "rtnl_route_alloc");
        }
        nl_addr_set_prefixlen(dst, 0);
        rtnl_route_set_family(rt, AF_INET);
        rtnl_route_set_dst(rt, dst);
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_nh_set_gateway(nh, via);
        rtnl_route_add_nexthop(rt, nh);
        r = rtnl_route_add(sk, rt, NLM_F_CREATE);
        return r < 0 ? nl_fail(r, "rtnl_route_add", "default via host side") : 0;
}

struct inside_args {
        uint32_t host_addr, gen_addr;
};

static int configure_inside(void *arg) {
        struct inside_args *a = arg;
        _cleanup_(nl_sock_freep) struct nl_sock *sk = NULL;
        int r, lo = 0, ifindex = 0;

        if ((r = route_socket(&sk)) < 0 || (r = ifindex_of("lo", &lo)) < 0 ||
            (r = link_up(sk, lo, "lo")) < 0 || (r = ifindex_of(GEN_IF, &ifindex)) < 0 ||
            (r = link_up(sk, ifindex, GEN_IF)) < 0 ||
            (r = addr_add(sk, ifindex, GEN_IF, a->gen_addr)) < 0 ||
            (r = neigh_add(sk, ifindex, GEN_IF, a->host_addr)) < 0 ||
            (r = default_route(sk, ifindex, a->host_addr)) < 0)
                return r;
        return link_wait_running(sk, GEN_IF);
}

static int host_sysctl(const char *ifname, const char *key, const char *value) {
        char path[128];
        snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/%s", ifname, key);
        return write_file(path, value);
}

/* The host end up from the start (IFF_MULTICAST, a veth's default, is
 * named too, should ifi_change be 0, which the kernel reads as "every
 * flag"). The peer cannot be: the kernel opens it before it knows its
 * own peer (ENOTCONN); it goes up from inside. */
static int pair_add(struct nl_sock *sk, const char *host_if, int netns_fd, uint32_t host_addr,
                    uint32_t gen_addr) {
        _cleanup_(rtnl_veth_releasep) struct rtnl_link *link = rtnl_link_veth_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *host_mac = mac_of(host_addr),
                                               *gen_mac = mac_of(gen_addr);
        struct rtnl_link *peer;
        int r;

        if (!link || !host_mac || !gen_mac)
                return err_set(ENOMEM, "rtnl_link_veth_alloc");
        rtnl_link_set_name(link, host_if);
        rtnl_link_set_addr(link, host_mac);
        rtnl_link_set_flags(link, IFF_UP | IFF_MULTICAST);
        peer = rtnl_link_veth_get_peer(link);   /* a reference of its own */
        rtnl_link_set_name(peer, GEN_IF);
        rtnl_link_set_addr(peer, gen_mac);
        rtnl_link_set_ns_fd(peer, netns_fd);
        rtnl_link_put(peer);
        r = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
        return r < 0 ? nl_fail(r, "rtnl_link_add(veth)", host_if) : 0;
}

int veth_create(const char *host_if, int netns_fd, uint32_t host_addr, uint32_t gen_addr) {
        _cleanup_(nl_sock_freep) struct nl_sock *sk = NULL;
        struct inside_args in = { host_addr, gen_addr };
        int r, ifindex = 0;

        if ((r = route_socket(&sk)) < 0 ||
            (r = pair_add(sk, host_if, netns_fd, host_addr, gen_addr)) < 0)
                return r;
        /* route_localnet on this link alone lets host clients on 127.0.0.1
         * reach the generation (DNAT + masquerade); the link goes with it. */
        if ((r = host_sysctl(host_if, "route_localnet", "1")) < 0 ||
            (r = ifindex_of(host_if, &ifindex)) < 0 ||
            (r = addr_add(sk, ifindex, host_if, host_addr)) < 0 ||
            (r = neigh_add(sk, ifindex, host_if, gen_addr)) < 0 ||
            (r = netns_run_in(netns_fd, configure_inside, &in)) < 0 ||
            (r = link_wait_running(sk, host_if)) < 0) {
                veth_destroy(host_if);
                return r;
        }
        return 0;
}

int veth_destroy(const char *host_if) {
        _cleanup_(nl_sock_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = rtnl_link_alloc();
        int r;

        if (!link)
                return err_set(ENOMEM, "rtnl_link_alloc");
        if ((r = route_socket(&sk)) < 0)
                return r;
        rtnl_link_set_name(link, host_if);
        r = rtnl_link_delete(sk, link);
        if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_NODEV)
                return nl_fail(r, "rtnl_link_delete", host_if);
        return 0;
}

int veth_exists(const char *host_if) {
        struct ifreq ifr = { 0 };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

        if (fd < 0)
                return err_set(errno, "socket(AF_INET)");
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", host_if);
        r = ioctl(fd, SIOCGIFINDEX, &ifr);
        close(fd);
        if (r < 0 && errno == ENODEV)
                return 0;
        return r < 0 ? err_set(errno, "ioctl(SIOCGIFINDEX, %s)", host_if) : 1;
}

struct addr_walk {
        struct nl_cache *links;
        void (*fn)(uint32_t addr, const char *ifname, void *userdata);
        void *userdata;
};

static void on_addr(struct nl_object *o, void *arg) {
        struct rtnl_addr *a = (struct rtnl_addr *)o;
        struct addr_walk *w = arg;
        struct nl_addr *local = rtnl_addr_get_local(a);
        char name[IFNAMSIZ] = "?";
        uint32_t be;

        if (rtnl_addr_get_family(a) != AF_INET || !local || nl_addr_get_len(local) != 4)
                return;
        memcpy(&be, nl_addr_get_binary_addr(local), 4);
        rtnl_link_i2name(w->links, rtnl_addr_get_ifindex(a), name, sizeof(name));
        w->fn(ntohl(be), name, w->userdata);
}

int host_addrs_foreach(void (*fn)(uint32_t addr, const char *ifname, void *userdata),
                       void *userdata) {
        _cleanup_(nl_sock_freep) struct nl_sock *sk = NULL;
        struct nl_cache *addrs = NULL;
        struct addr_walk w = { .fn = fn, .userdata = userdata };
        int r;

        if ((r = route_socket(&sk)) < 0)
                return r;
        if ((r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &w.links)) < 0)
                return nl_fail(r, "rtnl_link_alloc_cache", "host links");
        r = rtnl_addr_alloc_cache(sk, &addrs);
        if (r < 0) {
                nl_cache_free(w.links);
                return nl_fail(r, "rtnl_addr_alloc_cache", "host addresses");
        }
        nl_cache_foreach(addrs, on_addr, &w);
        nl_cache_free(addrs);
        nl_cache_free(w.links);
        return 0;
}
