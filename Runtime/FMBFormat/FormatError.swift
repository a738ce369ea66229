// Errors for bundles that cannot be read or are not valid. Owned by the FMBFormat target.
//
// One error type for "this is not a good bundle" (`FormatError`, a list of `FormatIssue`s), so a CLI can
// catch it once and print every problem; I/O failures stay `FileError` and codec failures `CodecError`.

/// One problem found in a bundle, named by the path of the field it is about, in the spelling of the
/// `FMBundle` model (`chunks[12].payload.offset`, `program[17].bindings[2]`) or of the file layout
/// (`header.magic`, `sections[3].offset`).
public struct FormatIssue: Equatable, Sendable, CustomStringConvertible {
    /// Which check found it. Meaning checks only run once structure checks pass.
    public enum Pass: String, Sendable {
        /// The bytes: header, section table, field decoding, payload ranges and alignment.
        case structure
        /// What the decoded tables say: ordinals in range, bindings match kernels, schedule consistent.
        case meaning
        /// A checksum did not match the bytes it covers.
        case checksum
    }

    public var pass: Pass
    /// The field, e.g. `kernels[3].bindings[1]`.
    public var path: String
    /// What is wrong and what was expected.
    public var message: String
    /// Where in the file, when the issue is about bytes at a known place.
    public var fileOffset: Int?

    public init(_ pass: Pass, _ path: String, _ message: String, fileOffset: Int? = nil) {
        self.pass = pass
        self.path = path
        self.message = message
        self.fileOffset = fileOffset
    }

    public var description: String {
        if let fileOffset { return "\(path): \(message) (at file offset \(fileOffset))" }
        return "\(path): \(message)"
    }
}

/// A bundle that cannot be decoded or that fails validation, with every problem found.
public struct FormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bundle's path, or "<memory>" for bytes that are not a file.
    public var file: String
    public var issues: [FormatIssue]

    public init(file: String = "<memory>", issues: [FormatIssue]) {
        self.file = file
        self.issues = issues
    }

    public init(file: String = "<memory>", _ issue: FormatIssue) {
        self.init(file: file, issues: [issue])
    }

    /// How many issues `description` lists (all of them stay in `issues`).
    public static let describedIssueLimit = 50

    public var description: String {
        let head = issues.count == 1 ? "invalid bundle" : "invalid bundle (\(issues.count) problems)"
        if issues.count == 1 { return "\(file): \(head): \(issues[0])" }
        // A badly broken file can have thousands of issues; the first ones say enough.
        let shown = issues.prefix(Self.describedIssueLimit).map { "  \($0.pass.rawValue): \($0)" }
        let more = issues.count > Self.describedIssueLimit
            ? ["  … and \(issues.count - Self.describedIssueLimit) more"] : []
        return "\(file): \(head):\n" + (shown + more).joined(separator: "\n")
    }

    /// The same error attributed to `file`.
    func at(_ file: String) -> FormatError { FormatError(file: file, issues: issues) }
}
