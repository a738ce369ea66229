// Entry point of fmc-conformance; the command is Conformance (ConformanceCommand.swift).
Conformance.main()
