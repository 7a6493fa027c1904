/*
 * main.c - the agentbox command line (placeholder until the CLI lands).
 */
#include <stdio.h>
#include <string.h>

#include "providers/local/local.h"

int main(int argc, char **argv)
{
    /* The local provider's sandbox spawner: before anything else (no threads, no config). */
    if (argc > 1 && strcmp(argv[1], SBX_LOCAL_HELPER_ARG) == 0)
        return sbx_local_helper_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("agentbox %s\n", AGENTBOX_VERSION);
        return 0;
    }
    fprintf(stderr, "agentbox: not implemented yet\n");
    return 2;
}
