// BERT's tokenizer over a vocab.txt: basic tokenization (clean, split CJK, lowercase, strip accents, split
// punctuation) then greedy longest-match WordPiece with "##" continuations, as HF's BertTokenizer with
// do_lower_case (the normalizer and pre-tokenizer of all-MiniLM-L6-v2's tokenizer.json).

import Foundation

struct WordPieceError: Error, CustomStringConvertible {
    var description: String
}

struct WordPieceTokenizer {
    /// Token → id: line i of vocab.txt has id i.
    let vocabulary: [String: Int64]
    let unknown: Int64, classifier: Int64, separator: Int64, padding: Int64
    /// Words longer than this (in characters) become [UNK] whole, as in BERT.
    let maxCharactersPerWord = 100

    init(vocabPath: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: vocabPath, encoding: .utf8)
        } catch {
            throw WordPieceError(description: "\(vocabPath): cannot read the vocabulary (\(error.localizedDescription))")
        }
        var vocabulary: [String: Int64] = [:]
        // Split on "\n" only: a token may be any other character, "\r" included. A repeated token keeps its last
        // line's id, as HF's loaders do.
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.isEmpty {
            vocabulary[String(line)] = Int64(index)
        }
        func id(_ token: String) throws -> Int64 {
            guard let id = vocabulary[token] else {
                throw WordPieceError(description: "\(vocabPath): the vocabulary has no \(token) token; is it a BERT vocab.txt?")
            }
            return id
        }
        self.vocabulary = vocabulary
        unknown = try id("[UNK]")
        classifier = try id("[CLS]")
        separator = try id("[SEP]")
        padding = try id("[PAD]")
    }

    /// `[CLS] tokens [SEP]`, truncated to `length` and padded with [PAD]; the mask is 1 on real tokens.
    func encode(_ text: String, length: Int) -> (ids: [Int64], mask: [Int64]) {
        var ids = [classifier] + basicTokens(text).flatMap(wordPieces).prefix(length - 2) + [separator]
        let mask = [Int64](repeating: 1, count: ids.count) + [Int64](repeating: 0, count: length - ids.count)
        ids += [Int64](repeating: padding, count: length - ids.count)
        return (ids, mask)
    }

    // MARK: Basic tokenization

    /// Whitespace-separated words, lowercased and without accents, each punctuation character a word of its own.
    func basicTokens(_ text: String) -> [String] {
        var spaced = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                spaced.append(" ")
            } else if Self.isCJK(scalar) {
                spaced.append(contentsOf: [" ", scalar, " "])
            } else {
                spaced.append(scalar)
            }
        }
        var tokens: [String] = []
        for word in String(spaced).split(separator: " ") {
            let folded = word.lowercased().decomposedStringWithCanonicalMapping.unicodeScalars
                .filter { $0.properties.generalCategory != .nonspacingMark }
            var current = String.UnicodeScalarView()
            for scalar in folded {
                if Self.isPunctuation(scalar) {
                    if !current.isEmpty { tokens.append(String(current)); current = .init() }
                    tokens.append(String(scalar))
                } else {
                    current.append(scalar)
                }
            }
            if !current.isEmpty { tokens.append(String(current)) }
        }
        return tokens
    }

    /// Greedy longest match from the left; a word with a piece not in the vocabulary is [UNK] whole.
    func wordPieces(_ word: String) -> [Int64] {
        let scalars = Array(word.unicodeScalars)
        guard scalars.count <= maxCharactersPerWord else { return [unknown] }
        var pieces: [Int64] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int64?
            while start < end {
                var piece = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { piece = "##" + piece }
                if let id = vocabulary[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unknown] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    // MARK: Character classes (BERT's definitions)

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    /// Unicode punctuation, and every non-alphanumeric ASCII symbol ("$", "^", "`" …) as BERT counts them.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks, which BERT splits into one token per character.
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
