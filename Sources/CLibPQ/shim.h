#ifndef FRESHET_CLIBPQ_SHIM_H
#define FRESHET_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
