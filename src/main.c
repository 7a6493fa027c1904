/*
 * main.c - the agentbox command line (placeholder until the CLI lands).
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("agentbox %s\n", AGENTBOX_VERSION);
        return 0;
    }
    fprintf(stderr, "agentbox: not implemented yet\n");
    return 2;
}
