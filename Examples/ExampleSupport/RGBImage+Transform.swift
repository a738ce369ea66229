// Crops, 180° rotation and bilinear resizing: what a recognizer's preprocessing does to a detected box.

extension RGBImage {
    /// The pixels of `box` (inclusive coordinates, clamped to the image) as an image of their own.
    public func cropped(to box: Box) -> RGBImage {
        let (x0, x1) = (min(max(box.x0, 0), width - 1), min(max(box.x1, 0), width - 1))
        let (y0, y1) = (min(max(box.y0, 0), height - 1), min(max(box.y1, 0), height - 1))
        let (w, h) = (max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1))
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            let source = ((y0 + y) * width + x0) * 3
            out.replaceSubrange((y * w * 3)..<((y + 1) * w * 3), with: pixels[source..<(source + w * 3)])
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// The image turned by 180° (cv2.rotate(img, ROTATE_180)): pixel (x, y) goes to (w − 1 − x, h − 1 − y).
    public func rotated180() -> RGBImage {
        var out = [UInt8](repeating: 0, count: pixels.count)
        let count = width * height
        for i in 0..<count {
            let j = count - 1 - i
            out[j * 3] = pixels[i * 3]
            out[j * 3 + 1] = pixels[i * 3 + 1]
            out[j * 3 + 2] = pixels[i * 3 + 2]
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Bilinear resampling to `width × height` with OpenCV's INTER_LINEAR geometry (what PaddleOCR and rapidocr call):
    /// pixel centres aligned, source coordinate (d + 0.5) · scale − 0.5 clamped to the image, each value rounded half
    /// up to 8 bits. OpenCV computes the weights in 11-bit fixed point, so its bytes may differ from these by one.
    public func resized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        precondition(newWidth > 0 && newHeight > 0, "resized: \(newWidth)×\(newHeight)")
        /// For each destination index: the two source indices and the weight of the second.
        func taps(_ count: Int, from source: Int) -> [(Int, Int, Double)] {
            let scale = Double(source) / Double(count)
            return (0..<count).map { d in
                let s = max((Double(d) + 0.5) * scale - 0.5, 0)
                let i0 = min(Int(s.rounded(.down)), source - 1)
                return (i0, min(i0 + 1, source - 1), s - Double(i0))
            }
        }
        let columns = taps(newWidth, from: width), rows = taps(newHeight, from: height)
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        for (y, (r0, r1, fy)) in rows.enumerated() {
            for (x, (c0, c1, fx)) in columns.enumerated() {
                for c in 0..<3 {
                    func at(_ row: Int, _ column: Int) -> Double { Double(pixels[(row * width + column) * 3 + c]) }
                    let top = at(r0, c0) * (1 - fx) + at(r0, c1) * fx
                    let bottom = at(r1, c0) * (1 - fx) + at(r1, c1) * fx
                    let value = top * (1 - fy) + bottom * fy
                    out[(y * newWidth + x) * 3 + c] = UInt8(min(max((value + 0.5).rounded(.down), 0), 255))
                }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }
}
