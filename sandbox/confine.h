/* Confining a generation's process just before exec: identity,
 * capabilities, no_new_privs, namespaces, rlimits, seccomp. The parent
 * resolves and validates everything (confine_prepare); the child only
 * applies (confine_apply), so every error a policy can cause is found
 * before anything is started. */
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
};

/* The capabilities root keeps without a [sandbox] capabilities line. */
extern const int confine_default_caps[];
extern const unsigned confine_n_default_caps;

int confine_prepare(const struct policy *p, const char *service, unsigned gen,
                    const char *profile_dir, struct confine *ret);
/* Reads a seccomp profile (see gen.policy(5)); errors say file:line. */
int seccomp_profile_load(const char *path, bool *ret_allow_list, int **ret_nrs,
                         unsigned *ret_n);
void confine_done(struct confine *c);
int confine_apply(const struct confine *c);     /* in the child */
