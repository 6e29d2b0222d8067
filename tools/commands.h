/* Subcommand entry points of the moebench CLI (tools/commands.inc lists them). */
#ifndef MOE_TOOLS_COMMANDS_H
#define MOE_TOOLS_COMMANDS_H

#define MOE_COMMAND(name, summary) int moe_cmd_##name(int argc, char **argv);
#include "commands.inc"
#undef MOE_COMMAND

#endif
