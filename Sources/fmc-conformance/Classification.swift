// Sorting a compile error into "unsupported" (the compiler declined an ONNX feature it says it does not have)
// or "failed" (anything else: a wrong shape rule, a lowering bug, a shader that does not compile), and naming
// the unsupported feature in a short, groupable reason. Owned by fmc-conformance.
//
// The reason is derived from the compiler's own message, never guessed from the test: only an error whose text
// says "not supported" / "unsupported" / "only … supported" / "not a compile-time constant" / "not known at
// compile time" is an unsupported feature; every other error counts as a failure, so a bug cannot hide in the unsupported column.

import FlashMemCompiler
import Foundation

enum Classification {
    enum Verdict: Equatable {
        case unsupported(String)
        case failed(String)
    }

    /// Classifies the error `Compiler.compile` threw for a test filed under `testOp`. `zeroSizeData` says whether
    /// some test tensor has a dimension of 0: the compiler folds what it can of those and refuses a kernel operand
    /// without elements ("zero-size tensor … is not supported"), which is then the reason.
    static func compileError(_ error: Error, testOp: String, zeroSizeData: Bool) -> Verdict {
        let compileError = error as? CompileError
        let message = compileError?.message ?? "\(error)"
        if var reason = unsupportedReason(message, zeroSizeData: zeroSizeData) {
            // A missing op other than the test's own (in an _expanded test's function body) is named.
            if reason == "op not supported", let op = compileError?.op, op != testOp { reason = "op \(op) not supported" }
            return .unsupported(reason)
        }
        return .failed("compile: " + oneLine(message))
    }

    static func unsupportedReason(_ message: String, zeroSizeData: Bool) -> String? {
        let text = oneLine(message)
        let lower = text.lowercased()
        if zeroSizeData && lower.contains("zero-size") && lower.contains("not supported") {
            return "zero-size tensor"
        }
        if lower.contains("not a compile-time constant") || lower.contains("not known at compile time") {
            return "dynamic shape"
        }
        let onlyClause = match(#"only [^;]* (?:is|are) supported"#, text)?[0]
        let declined = lower.contains("not supported") || lower.contains("unsupported")
            || lower.contains("cannot exchange") || onlyClause != nil
        guard declined else { return nil }

        if lower.contains("unsupported operator") || match(#"^operator '[^']*' is not supported"#, text) != nil {
            return "op not supported"
        }
        if let m = match(#"operator domain '([^']*)' is not supported"#, text) { return "domain \(m[1])" }
        if let m = match(#"dtype ([A-Za-z0-9_]+)"#, text) { return "dtype \(dtypeName(m[1]))" }
        if let m = match(#"' is ([a-z0-9]+); only float tensors are supported"#, text) {
            return "dtype \(dtypeName(m[1])) (float only)"
        }
        if let m = match(#"attribute '[^']*' is of kind ([A-Za-z_]+)"#, text) { return "attribute kind \(m[1].lowercased())" }
        if let m = match(#"([A-Za-z_]+) = ([^ ]+) is not supported"#, text) { return "attribute \(m[1])=\(m[2])" }
        if let m = match(#"^([A-Za-z_]+) '([^']*)' is not supported"#, text) { return "attribute \(m[1])=\(m[2])" }
        if !lower.contains("not supported"), let onlyClause { return generic(onlyClause) }
        return generic(text)
    }

    /// The message up to "not supported", without parenthesized details (shapes, lists of what is supported),
    /// so that tests declined for the same reason group together.
    static func generic(_ text: String) -> String {
        var s = text
        if let range = s.range(of: "not supported") { s = String(s[..<range.upperBound]) }
        s = s.replacingOccurrences(of: #"\s*\([^()]*\)"#, with: "", options: .regularExpression)
        s = s.replacingOccurrences(of: #"\[[0-9, ?]*\]"#, with: "[…]", options: .regularExpression)
        return s.trimmingCharacters(in: .whitespaces)
    }

    /// ONNX's lower-case dtype names (the compiler says "float64" or "DOUBLE"; the report says "double").
    static func dtypeName(_ name: String) -> String {
        switch name.lowercased() {
        case "float32": "float"
        case "float64": "double"
        default: name.lowercased()
        }
    }

    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    /// The capture groups of the first match of `pattern` in `text` (group 0 = the whole match), or nil.
    static func match(_ pattern: String, _ text: String) -> [String]? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let m = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return nil }
        return (0..<m.numberOfRanges).map { i in
            Range(m.range(at: i), in: text).map { String(text[$0]) } ?? ""
        }
    }
}
