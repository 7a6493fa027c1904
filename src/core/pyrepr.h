/*
 * pyrepr.h - Python's repr() of str and of a list of str, byte for byte.
 *
 * deepagents renders the ls and glob tool texts as str(list_of_paths), i.e. a Python list
 * repr (deepagents-contract.md section 7), and agents are tuned on that exact text. File
 * names are bytes; Python (os.scandir on a str path) decodes them as UTF-8 with the
 * surrogateescape handler, so an undecodable byte 0xNN becomes U+DCNN and repr() shows it as
 * '\udcNN'. We do the same, which makes the text for any file name identical to what a Python
 * sandbox helper would show.
 */
#ifndef AB_CORE_PYREPR_H
#define AB_CORE_PYREPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

/* Decode one code point at s[*i] (len bytes in all), advancing *i. Invalid or truncated
 * UTF-8 yields U+DC80..U+DCFF for the single offending byte (Python's surrogateescape). */
uint32_t pyrepr_next_cp(const char *s, size_t len, size_t *i);

/* Number of code points of s as Python would count them (len() of the decoded str). */
size_t pyrepr_char_len(const char *s, size_t len);

/* Python's str.isprintable() for one code point (Unicode version PYREPR_UNICODE_VERSION). */
bool pyrepr_isprintable(uint32_t cp);

/* Append repr(s) to out: quotes chosen as Python does, escapes for \\, the quote, \t \n \r,
 * and \xNN / \uNNNN / \UNNNNNNNN for non-printable characters. */
ab_status pyrepr_str(struct buf *out, const char *s, size_t len);

/* Append str(list) for a list of NUL-terminated strings: "['a', 'b']", "[]" when n == 0. */
ab_status pyrepr_str_list(struct buf *out, const char *const *items, size_t n);

#endif
