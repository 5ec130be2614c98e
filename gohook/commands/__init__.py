"""gohook.commands: the command line, and nothing else (last stage).

main: the parser, `main(argv) -> int`, one fatal-error path. One module per subcommand (inspect, attach,
policy, doctor, symbols), each with `register(subparsers)`: it parses arguments into the typed options of a
pipeline stage, calls that stage and prints. No pipeline logic lives here: benchmarks, scripts and tests
call the stages (gohook.session, gohook.static.inspection, gohook.policy.*) directly.
"""
