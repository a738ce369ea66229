/// Opens a `.fmb` file for a session: maps it, validates it (structure, then meaning) and, with
/// `verifyChecksums`, decodes every chunk to check it (reads the whole file). The one place the runtime
/// calls the format's reader. Throws `FileError` or `FormatError` naming the path.
public func openBundle(path: String, verifyChecksums: Bool = false) throws -> LoadedBundle {
    try BundleReader.open(path: path, verifyChecksums: verifyChecksums)
}
