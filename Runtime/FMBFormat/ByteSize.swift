/// Sizes as the command lines write them: "512MiB", "1.5GiB", "64KB", "1000000" (bytes).
public enum ByteSize {
    static let units: [(suffix: String, scale: UInt64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                                                           ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1000), ("B", 1)]

    /// The bytes `text` stands for; nil when it is not a positive size.
    public static func parse(_ text: String) -> UInt64? {
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)), value > 0 { return UInt64(value * Double(scale)) }
        }
        if let value = UInt64(text), value > 0 { return value }
        return nil
    }
}
