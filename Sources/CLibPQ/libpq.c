// The PQ functions Freshet calls, each forwarding to libpq once it is loaded with dlopen.
// See freshet_libpq_load in include/CLibPQ.h for why libpq is not linked.

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

// Hidden: libpq's own calls between its functions must never land on these forwards.
#pragma GCC visibility push(hidden)
#include "CLibPQ.h"

/// The soname every libpq since PostgreSQL 8.0 carries.
static const char libpq_soname[] = "libpq.so.5";
static void *libpq_handle;
static char libpq_error[512];
static pthread_once_t libpq_once = PTHREAD_ONCE_INIT;

/// FRESHET_LIBPQ names another libpq, such as one outside the loader's search path.
static void libpq_open(void) {
    const char *chosen = getenv("FRESHET_LIBPQ");
    const char *library = chosen && *chosen ? chosen : libpq_soname;
    // Lazy: most of libpq's libraries bind at load anyway, and the rest need not.
    libpq_handle = dlopen(library, RTLD_LAZY | RTLD_LOCAL);
    if (libpq_handle == NULL) {
        const char *reason = dlerror();
        snprintf(libpq_error, sizeof libpq_error,
                 "cannot load libpq: %s; install it (Debian and Ubuntu: apt-get install libpq5) "
                 "or set FRESHET_LIBPQ to its path",
                 reason ? reason : library);
    }
}

const char *freshet_libpq_load(void) {
    pthread_once(&libpq_once, libpq_open);
    return libpq_handle ? NULL : libpq_error;
}

/// The address of `name` in libpq. A library that cannot be loaded, or lacks the function,
/// ends the process with one line: nothing sensible can run without it.
static void *libpq_function(const char *name) {
    const char *problem = freshet_libpq_load();
    if (problem == NULL) {
        void *address = dlsym(libpq_handle, name);
        if (address != NULL) return address;
        problem = "libpq lacks a function Freshet needs; install libpq 15 or later";
    }
    fprintf(stderr, "error: %s (needed for %s)\n", problem, name);
    exit(1);
}

// Each forward resolves its function once; racing threads store the same address.
#define FORWARD(result, name, parameters, arguments)                                       \
    result name parameters {                                                               \
        static result(*target) parameters;                                                 \
        result(*resolved) parameters = __atomic_load_n(&target, __ATOMIC_ACQUIRE);         \
        if (resolved == NULL) {                                                            \
            resolved = (result(*) parameters)libpq_function(#name);                        \
            __atomic_store_n(&target, resolved, __ATOMIC_RELEASE);                         \
        }                                                                                  \
        return resolved arguments;                                                         \
    }

FORWARD(PGconn *, PQconnectdb, (const char *conninfo), (conninfo))
FORWARD(PGconn *, PQconnectdbParams, (const char *const *keywords, const char *const *values, int expand_dbname),
        (keywords, values, expand_dbname))
FORWARD(void, PQfinish, (PGconn *conn), (conn))
FORWARD(PGPing, PQping, (const char *conninfo), (conninfo))
FORWARD(PQconninfoOption *, PQconndefaults, (void), ())
FORWARD(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg), (conninfo, errmsg))
FORWARD(void, PQconninfoFree, (PQconninfoOption *options), (options))
FORWARD(ConnStatusType, PQstatus, (const PGconn *conn), (conn))
FORWARD(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), (conn))
FORWARD(char *, PQerrorMessage, (const PGconn *conn), (conn))
FORWARD(char *, PQdb, (const PGconn *conn), (conn))
FORWARD(char *, PQuser, (const PGconn *conn), (conn))
FORWARD(char *, PQhost, (const PGconn *conn), (conn))
FORWARD(char *, PQport, (const PGconn *conn), (conn))
FORWARD(int, PQsocket, (const PGconn *conn), (conn))
FORWARD(int, PQbackendPID, (const PGconn *conn), (conn))
FORWARD(PQnoticeReceiver, PQsetNoticeReceiver, (PGconn *conn, PQnoticeReceiver proc, void *arg), (conn, proc, arg))
FORWARD(PGresult *, PQexecParams,
        (PGconn *conn, const char *command, int nParams, const Oid *paramTypes, const char *const *paramValues,
         const int *paramLengths, const int *paramFormats, int resultFormat),
        (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat))
FORWARD(PGresult *, PQprepare, (PGconn *conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes),
        (conn, stmtName, query, nParams, paramTypes))
FORWARD(PGresult *, PQexecPrepared,
        (PGconn *conn, const char *stmtName, int nParams, const char *const *paramValues, const int *paramLengths,
         const int *paramFormats, int resultFormat),
        (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat))
FORWARD(int, PQsendQuery, (PGconn *conn, const char *query), (conn, query))
FORWARD(PGresult *, PQgetResult, (PGconn *conn), (conn))
FORWARD(int, PQconsumeInput, (PGconn *conn), (conn))
FORWARD(PGnotify *, PQnotifies, (PGconn *conn), (conn))
FORWARD(int, PQputCopyEnd, (PGconn *conn, const char *errormsg), (conn, errormsg))
FORWARD(int, PQputCopyData, (PGconn *conn, const char *buffer, int nbytes), (conn, buffer, nbytes))
FORWARD(int, PQflush, (PGconn *conn), (conn))
FORWARD(int, PQgetCopyData, (PGconn *conn, char **buffer, int async), (conn, buffer, async))
FORWARD(char *, PQescapeLiteral, (PGconn *conn, const char *str, size_t len), (conn, str, len))
FORWARD(ExecStatusType, PQresultStatus, (const PGresult *res), (res))
FORWARD(char *, PQresultErrorMessage, (const PGresult *res), (res))
FORWARD(char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode))
FORWARD(char *, PQcmdStatus, (PGresult *res), (res))
FORWARD(int, PQntuples, (const PGresult *res), (res))
FORWARD(int, PQnfields, (const PGresult *res), (res))
FORWARD(char *, PQfname, (const PGresult *res, int field_num), (res, field_num))
FORWARD(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num))
FORWARD(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num))
FORWARD(int, PQgetlength, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num))
FORWARD(int, PQfformat, (const PGresult *res, int field_num), (res, field_num))
FORWARD(void, PQclear, (PGresult *res), (res))
FORWARD(void, PQfreemem, (void *ptr), (ptr))

#pragma GCC visibility pop
