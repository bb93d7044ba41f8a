/* runtime/nonnull.h - the null-argument policy (docs/api.md, "Null
 * arguments"): a NULL where a public function needs an object or an output
 * is a programming error and aborts through weft_panic naming the function
 * and the argument; a NULL the function's comment allows is never checked
 * here. Kept out of internal.h so that any public entry point can include
 * it without seeing the scheduler. */
#ifndef WEFT_NONNULL_H
#define WEFT_NONNULL_H

#include "weft/common.h"

WEFT_NORETURN void weft__null_arg(const char *fn, const char *arg, const char *site);

/* Aborts with "fn: p is NULL" when p is NULL. fn is the public function's
 * name (a string literal): __func__ would name a static helper. An
 * expression, so a thin wrapper can check inside its return statement. */
#define WEFT__REQUIRE(fn, p) ((p) != NULL ? (void)0 : weft__null_arg((fn), #p, WEFT_SITE))

#endif
