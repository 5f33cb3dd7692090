/* Confining a generation: what its namespaces and file system view are
 * (spawn.c and view.c make them), and, in each process just before exec,
 * identity, capabilities, no_new_privs, rlimits, seccomp (confine_apply).
 * The parent resolves and validates everything (confine_prepare); the
 * child only applies, so every error a policy can cause is found before
 * anything is started. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct policy;

struct confine {
        uid_t uid;
        gid_t gid;
        uint64_t caps;                  /* kept in every set, ambient too */
        uint64_t nofile;                /* 0: inherit */
        uint64_t nproc;                 /* 0: inherit */
        uint64_t core;                  /* RLIMIT_CORE, UINT64_MAX: inherit */
        char hostname[64];
        bool new_uts, new_ipc, private_tmp;
        int *syscalls;                  /* seccomp: numbers of the profile */
        unsigned n_syscalls;
        bool allow_list;                /* strict: only these, else ENOSYS */
        bool has_seccomp;

        /* namespaces and the view (gen.policy(5) [sandbox]) */
        bool private_users, private_pids, private_devices;
        bool protect_system, protect_kernel, protect_cgroups;
        uid_t uid_base;                 /* host uid of its root, with private_users */
        bool low_ports;                 /* CAP_NET_BIND_SERVICE: ports < 1024 in its netns */
        char *directory;                /* real path of its release directory, NULL: none */
        char **writable, **readable;    /* real paths */
        char *resolv_conf, *hosts;      /* the text of its own /etc files */
        int pdeath_signal;              /* 0, or a signal when the parent dies (probes) */
};

/* What gend knows of the generation it confines. */
struct confine_target {
        const char *service;
        unsigned gen;
        const char *directory;          /* its release directory, "/": none */
        const char *addr, *gateway;     /* its address; the host side of its veth */
        unsigned slot;                  /* its address block: picks its host uid range */
        const char *profile_dir;        /* seccomp profiles */
};

/* The capabilities root keeps without a [sandbox] capabilities line. */
extern const int confine_default_caps[];
extern const unsigned confine_n_default_caps;

int confine_prepare(const struct policy *p, const struct confine_target *t,
                    struct confine *ret);
/* Reads a seccomp profile (see gen.policy(5)); errors say file:line. */
int seccomp_profile_load(const char *path, bool *ret_allow_list, int **ret_nrs,
                         unsigned *ret_n);
void confine_done(struct confine *c);
/* Its rlimits alone (its pid 1 has them too, so they show on the pid gend
 * reports). */
int confine_limits(const struct confine *c);
/* gend raises its own soft limit of open files to the hard one (a drain
 * holds a pidfd for each process of a generation); what it runs without
 * [limits] nofile gets back the limit gend was started with. *ret_from,
 * *ret_to: the soft limit before and after. */
int confine_raise_nofile(unsigned long long *ret_from, unsigned long long *ret_to);
/* In the child, after its namespaces (and user namespace) are entered:
 * rlimits, identity and capabilities, no_new_privs, seccomp. */
int confine_apply(const struct confine *c);
