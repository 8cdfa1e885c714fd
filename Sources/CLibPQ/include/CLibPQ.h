#ifndef FRESHET_CLIBPQ_H
#define FRESHET_CLIBPQ_H

// libpq's own declarations. Debian and most distributions keep the header one level down.
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif

/// Loads libpq (libpq.so.5, or the file FRESHET_LIBPQ names) now if it is not loaded yet.
/// Returns NULL once it is, or why it cannot be loaded.
///
/// Freshet does not link libpq: the library and the two dozen it pulls in (Kerberos, LDAP, GnuTLS)
/// cost more at process start than everything `migrate status` does before its first query, and
/// commands that never connect should not pay for them. Every PQ function declared above loads
/// libpq on its first call; call this first where a missing library should be an error, not an exit.
const char *freshet_libpq_load(void);

#endif
