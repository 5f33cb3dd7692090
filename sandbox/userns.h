/* A generation's user namespace: uids and gids 0-65535 inside are a range
 * of its own on the host, so its root is an unprivileged user outside,
 * and host files are read and written as a stranger's would be, except
 * below the paths its view maps back (view.c). */
#pragma once

#include <sys/types.h>

#define USERNS_SIZE 65536U
/* Host ids 0x70000000 and up, one range per address block: above the
 * ranges container managers hand out (systemd-nspawn ends below
 * 0x6fff0000) and below the 0x7ffe0000 "foreign" range. */
#define USERNS_FIRST 0x70000000U
#define USERNS_SLOTS 4094U

/* Pure: the host uid of root in the namespace of slot (address block). */
int userns_base(unsigned slot, uid_t *ret);
/* A new user namespace mapping 0-65535 to base.., as an fd for setns(2)
 * and MOUNT_ATTR_IDMAP; made through a short-lived helper process. */
int userns_create(uid_t base, int *ret_fd);
