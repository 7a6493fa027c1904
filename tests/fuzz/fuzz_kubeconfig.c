/*
 * fuzz_kubeconfig.c - the kubeconfig loader (config/kubeconfig.c): the capped YAML -> JSON
 * converter and the resolution of a context to server, credentials and namespace.
 *
 * Input: a selector byte, then the YAML. Selector bit 0 picks a context by name ("ctx")
 * instead of current-context. Checks besides "no crash, no leak": the converter's result
 * serialises (every scalar became a valid string), a resolved config names a server, and
 * nothing is read from the host: resolution from text never opens the files a kubeconfig
 * refers to (paths are only recorded), so the target runs with a directory that does not
 * exist.
 */
#include <string.h>

#include "config/kubeconfig.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *yaml = (const char *)data + 1;
    size_t len = size - 1;
    struct ab_err err;

    json_t *tree = NULL;
    ab_status rc = cfg_yaml_to_json(yaml, len, "fuzz", &tree, &err);
    if (rc == AB_OK) {
        if (tree) {
            char *s = json_dumps(tree, JSON_ENCODE_ANY | JSON_COMPACT);
            FUZZ_CHECK(s, "the converted tree does not serialise");
            free(s);
        }
        json_decref(tree);
    } else {
        FUZZ_CHECK(!tree, "a tree with an error");
        FUZZ_CHECK(err.msg[0], "status %d without a message", rc);
    }

    struct cfg_kubeconfig kc;
    memset(&kc, 0, sizeof(kc));
    rc = cfg_kubeconfig_from_string(yaml, len, "fuzz", "/nonexistent/fuzz-kube",
                                    (data[0] & 1) ? "ctx" : NULL, &kc, &err);
    if (rc == AB_OK) {
        FUZZ_CHECK(kc.server && *kc.server, "a resolved kubeconfig without a server");
        FUZZ_CHECK(!kc.ca_len || kc.ca_data, "ca length without data");
        FUZZ_CHECK(!kc.cert_len || kc.cert_data, "cert length without data");
        FUZZ_CHECK(!kc.key_len || kc.key_data, "key length without data");
        if (kc.ca_file && kc.ca_file[0] != '/')
            FUZZ_CHECK(0, "relative certificate-authority '%s' was not resolved", kc.ca_file);
    } else {
        FUZZ_CHECK(err.msg[0], "status %d without a message", rc);
    }
    cfg_kubeconfig_cleanup(&kc);
    return 0;
}
