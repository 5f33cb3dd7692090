/* The control socket (DESIGN.md, "Control socket"). */
#pragma once

#include "gend.h"

#define CONTROL_MAX_REQUEST 65536

/* A socket that answers belongs to a running gend: never take it over. */
int control_check_free(struct gend *d);
int control_listen(struct gend *d);
void control_close(struct gend *d);
