/*
 * schema.h - JSON Schema validation of tool arguments (the 2020-12 subset our schemas use).
 *
 * MCP 2025-11-25 (SEP-1303) makes invalid tool input a *tool* error the model can read and
 * fix, so the messages name the offending field by its path ("timeout", "files[2].path") and
 * say what was expected. Supported keywords: type, enum, const, properties, required,
 * additionalProperties, items, prefixItems, minItems, maxItems, uniqueItems, minLength,
 * maxLength, pattern (POSIX ERE approximation of ECMA-262), minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, multipleOf, minProperties, maxProperties, allOf,
 * anyOf, oneOf, not, $ref to "#/..." pointers ($defs/definitions), and boolean schemas.
 * Annotation keywords (title, description, default, examples, format, $schema, $id) are
 * accepted and ignored. Unknown keywords are ignored, as the spec requires.
 */
#ifndef AB_MCP_SCHEMA_H
#define AB_MCP_SCHEMA_H

#include <jansson.h>

#include "base/status.h"

/* AB_OK when instance conforms to schema; AB_INVAL with err->msg = "<path>: <problem>" for
 * the first violation found otherwise (AB_LIMIT if the schema nests absurdly deep). */
ab_status mcp_schema_validate(const json_t *schema, const json_t *instance, struct ab_err *err);

#endif
