// Text boxes from a text detector's probability map (DBNet: PP-OCR's detectors), and their reading order.

/// An axis-aligned box, inclusive pixel coordinates.
public struct Box: Equatable, Sendable {
    public var x0: Int, y0: Int, x1: Int, y1: Int

    public init(x0: Int, y0: Int, x1: Int, y1: Int) {
        self.x0 = x0
        self.y0 = y0
        self.x1 = x1
        self.y1 = y1
    }
}

/// Text boxes from a DBNet probability map ([height × width], row-major), by the rule the check script repeats:
/// pixels above `threshold`; 8-connected components; drop those under `minimumPixels`; each component's bounding
/// box grown on every side by area × `unclipRatio` / perimeter, rounded half up (DBNet shrinks text regions by that offset when it
/// trains), clamped to the image. Boxes in order of their first pixel (row-major).
public func textBoxes(probability: [Float], width: Int, height: Int, threshold: Float = 0.3, minimumPixels: Int = 10,
                      unclipRatio: Double = 1.5) -> [Box] {
    var label = [Int32](repeating: 0, count: width * height)
    var boxes: [Box] = []
    var stack: [Int] = []
    var next: Int32 = 0
    for start in 0..<(width * height) where probability[start] > threshold && label[start] == 0 {
        next += 1
        label[start] = next
        stack.append(start)
        var box = Box(x0: start % width, y0: start / width, x1: start % width, y1: start / width)
        var count = 0
        while let p = stack.popLast() {
            count += 1
            let (x, y) = (p % width, p / width)
            box = Box(x0: min(box.x0, x), y0: min(box.y0, y), x1: max(box.x1, x), y1: max(box.y1, y))
            for dy in -1...1 {
                for dx in -1...1 where (dx, dy) != (0, 0) {
                    let (nx, ny) = (x + dx, y + dy)
                    guard nx >= 0, nx < width, ny >= 0, ny < height else { continue }
                    let q = ny * width + nx
                    if probability[q] > threshold && label[q] == 0 {
                        label[q] = next
                        stack.append(q)
                    }
                }
            }
        }
        guard count >= minimumPixels else { continue }
        let (w, h) = (Double(box.x1 - box.x0 + 1), Double(box.y1 - box.y0 + 1))
        let offset = Int(w * h * unclipRatio / (2 * (w + h)) + 0.5)  // rounded half up, as int(x + 0.5)
        boxes.append(Box(x0: max(box.x0 - offset, 0), y0: max(box.y0 - offset, 0),
                         x1: min(box.x1 + offset, width - 1), y1: min(box.y1 + offset, height - 1)))
    }
    return boxes
}

/// `boxes` in reading order: top to bottom by line, left to right within a line. Two boxes are on one line when
/// each one's vertical centre lies within the other's rows (so a box is never ordered before a line above it).
public func readingOrder(_ boxes: [Box]) -> [Box] {
    var lines: [[Box]] = []
    for box in boxes.sorted(by: { ($0.y0 + $0.y1, $0.x0) < ($1.y0 + $1.y1, $1.x0) }) {
        let centre = (box.y0 + box.y1) / 2
        if let last = lines.last?.last, (last.y0...last.y1).contains(centre), (box.y0...box.y1).contains((last.y0 + last.y1) / 2) {
            lines[lines.count - 1].append(box)
        } else {
            lines.append([box])
        }
    }
    return lines.flatMap { $0.sorted { $0.x0 < $1.x0 } }
}
