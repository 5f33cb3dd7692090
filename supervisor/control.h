/* The control socket (DESIGN.md, "Control socket"). */
#pragma once

#include "gend.h"

#define CONTROL_MAX_REQUEST 65536

int control_listen(struct gend *d);
void control_close(struct gend *d);
