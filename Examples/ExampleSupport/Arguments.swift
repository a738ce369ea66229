// The examples' command lines: flags and options taken out by name, the positional arguments left, and one way to
// stop with an error.

import Foundation

/// Writes `<program>: message` to stderr and exits with status 1; the examples' one way to stop on an error.
public func fail(_ message: String) -> Never {
    let program = CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent } ?? "example"
    FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
    exit(1)
}

/// The arguments after the program name. `flag` and `option` take what they find out of `positional`, so what is
/// left once every flag and option was asked for is the positional arguments, in order.
public struct ExampleArguments {
    public private(set) var positional: [String]
    /// Shown after an option that lacks its value.
    public let usage: String

    public init(usage: String, arguments: [String] = Array(CommandLine.arguments.dropFirst())) {
        self.usage = usage
        positional = arguments
    }

    /// Whether `name` (e.g. `--preload`) was given; takes it out.
    public mutating func flag(_ name: String) -> Bool {
        guard let index = positional.firstIndex(of: name) else { return false }
        positional.remove(at: index)
        return true
    }

    /// The value after `name` (e.g. `--dump DIR`), nil when `name` was not given; takes both out. Fails when the
    /// value is missing.
    public mutating func option(_ name: String) -> String? {
        guard let index = positional.firstIndex(of: name) else { return nil }
        guard index + 1 < positional.count else { fail("\(name) expects a value\n\(usage)") }
        defer { positional.removeSubrange(index...(index + 1)) }
        return positional[index + 1]
    }
}
