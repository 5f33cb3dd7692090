/* Who holds a public port on this host (gend's network namespace): a
 * socket listening on it (TCP) or bound to it (UDP), and its process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 and a description ("pid 812 (nginx) listens on 0.0.0.0:8080") when
 * held, 0 when free, -errno when it cannot be told. */
int port_holder(int proto, uint16_t port, char *buf, size_t n);
