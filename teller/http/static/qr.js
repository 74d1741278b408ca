/*
 * A small QR Code encoder (ISO/IEC 18004): byte mode, error correction level M, versions 1-10.
 * Version 10-M holds 213 bytes, far more than an address or an EIP-681 URI needs; anything longer
 * is refused rather than drawn wrong. The page draws deposit addresses with it, so it runs offline
 * and nothing about a user's address leaves the page.
 *
 * Public surface (window.TellerQR):
 *   encode(text) -> {version, mask, size, modules}   modules[row][col] is true for a dark module
 *   toSvg(qr, {quietZone}) -> SVGElement             black on white, whatever the theme: scanners
 *                                                    read inverted codes poorly
 */
(function () {
  "use strict";

  var VERSION_MAX = 10;
  // Per version (index 0 unused), level M: error-correction codewords per block, and block count.
  var ECC_CODEWORDS_PER_BLOCK = [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26];
  var ECC_BLOCK_COUNT = [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5];
  var FORMAT_BITS_LEVEL_M = 0; // the two level bits of the format information for M
  var PAD_BYTES = [0xec, 0x11];

  // --- Reed-Solomon over GF(2^8) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1 ---
  function gfMultiply(x, y) {
    var z = 0;
    for (var i = 7; i >= 0; i--) {
      z = (z << 1) ^ ((z >>> 7) * 0x11d);
      z ^= ((y >>> i) & 1) * x;
    }
    return z;
  }

  function rsDivisor(degree) {
    var result = [];
    for (var i = 0; i < degree - 1; i++) result.push(0);
    result.push(1);
    var root = 1;
    for (var k = 0; k < degree; k++) {
      for (var j = 0; j < result.length; j++) {
        result[j] = gfMultiply(result[j], root);
        if (j + 1 < result.length) result[j] ^= result[j + 1];
      }
      root = gfMultiply(root, 0x02);
    }
    return result;
  }

  function rsRemainder(data, divisor) {
    var result = divisor.map(function () { return 0; });
    data.forEach(function (b) {
      var factor = b ^ result.shift();
      result.push(0);
      divisor.forEach(function (coef, i) { result[i] ^= gfMultiply(coef, factor); });
    });
    return result;
  }

  // --- capacities ---
  function rawDataModules(version) {
    var result = (16 * version + 128) * version + 64;
    if (version >= 2) {
      var alignCount = Math.floor(version / 7) + 2;
      result -= (25 * alignCount - 10) * alignCount - 55;
      if (version >= 7) result -= 36;
    }
    return result;
  }

  function dataCodewords(version) {
    return Math.floor(rawDataModules(version) / 8) -
      ECC_CODEWORDS_PER_BLOCK[version] * ECC_BLOCK_COUNT[version];
  }

  function countBits(version) {
    return version <= 9 ? 8 : 16; // byte mode character-count indicator
  }

  function utf8Bytes(text) {
    return Array.from(new TextEncoder().encode(text));
  }

  function chooseVersion(byteCount) {
    for (var v = 1; v <= VERSION_MAX; v++) {
      if (4 + countBits(v) + 8 * byteCount <= dataCodewords(v) * 8) return v;
    }
    throw new RangeError("QR: text too long for version " + VERSION_MAX + "-M");
  }

  // --- the bit stream: mode, count, data, terminator, padding ---
  function dataStream(bytes, version) {
    var bits = [];
    function put(value, length) {
      for (var i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
    }
    put(0x4, 4);
    put(bytes.length, countBits(version));
    bytes.forEach(function (b) { put(b, 8); });
    var capacityBits = dataCodewords(version) * 8;
    put(0, Math.min(4, capacityBits - bits.length));
    put(0, (8 - (bits.length % 8)) % 8);
    var codewords = [];
    for (var i = 0; i < bits.length; i += 8) {
      var byte = 0;
      for (var j = 0; j < 8; j++) byte = (byte << 1) | bits[i + j];
      codewords.push(byte);
    }
    for (var p = 0; codewords.length < capacityBits / 8; p++) codewords.push(PAD_BYTES[p % 2]);
    return codewords;
  }

  // Split into blocks (short blocks first), append each block's ECC, interleave.
  function withEcc(data, version) {
    var blockCount = ECC_BLOCK_COUNT[version];
    var eccLength = ECC_CODEWORDS_PER_BLOCK[version];
    var rawCodewords = Math.floor(rawDataModules(version) / 8);
    var shortBlockCount = blockCount - (rawCodewords % blockCount);
    var shortBlockLength = Math.floor(rawCodewords / blockCount);
    var divisor = rsDivisor(eccLength);
    var blocks = [];
    for (var i = 0, k = 0; i < blockCount; i++) {
      var length = shortBlockLength - eccLength + (i < shortBlockCount ? 0 : 1);
      var block = data.slice(k, k + length);
      k += length;
      var ecc = rsRemainder(block, divisor);
      if (i < shortBlockCount) block.push(0); // placeholder, skipped below
      blocks.push(block.concat(ecc));
    }
    var result = [];
    for (var col = 0; col < blocks[0].length; col++) {
      for (var b = 0; b < blocks.length; b++) {
        if (col !== shortBlockLength - eccLength || b >= shortBlockCount) result.push(blocks[b][col]);
      }
    }
    return result;
  }

  // --- the matrix ---
  function Grid(version) {
    this.size = version * 4 + 17;
    this.modules = [];
    this.isFunction = [];
    for (var r = 0; r < this.size; r++) {
      this.modules.push(new Array(this.size).fill(false));
      this.isFunction.push(new Array(this.size).fill(false));
    }
  }
  Grid.prototype.setFunction = function (col, row, dark) {
    this.modules[row][col] = dark;
    this.isFunction[row][col] = true;
  };

  function alignmentPositions(version) {
    if (version === 1) return [];
    var count = Math.floor(version / 7) + 2;
    var size = version * 4 + 17;
    var step = Math.ceil((version * 4 + 4) / (count * 2 - 2)) * 2;
    var result = [6];
    for (var pos = size - 7; result.length < count; pos -= step) result.splice(1, 0, pos);
    return result;
  }

  function drawFinder(grid, centreCol, centreRow) {
    for (var dy = -4; dy <= 4; dy++) {
      for (var dx = -4; dx <= 4; dx++) {
        var dist = Math.max(Math.abs(dx), Math.abs(dy));
        var col = centreCol + dx, row = centreRow + dy;
        if (col >= 0 && col < grid.size && row >= 0 && row < grid.size) {
          grid.setFunction(col, row, dist !== 2 && dist !== 4);
        }
      }
    }
  }

  function drawAlignment(grid, centreCol, centreRow) {
    for (var dy = -2; dy <= 2; dy++) {
      for (var dx = -2; dx <= 2; dx++) {
        grid.setFunction(centreCol + dx, centreRow + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
      }
    }
  }

  function bit(value, index) {
    return ((value >>> index) & 1) !== 0;
  }

  function drawFormat(grid, mask) {
    var data = (FORMAT_BITS_LEVEL_M << 3) | mask;
    var rem = data;
    for (var i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    var bits = ((data << 10) | rem) ^ 0x5412;
    var size = grid.size;
    for (i = 0; i <= 5; i++) grid.setFunction(8, i, bit(bits, i));
    grid.setFunction(8, 7, bit(bits, 6));
    grid.setFunction(8, 8, bit(bits, 7));
    grid.setFunction(7, 8, bit(bits, 8));
    for (i = 9; i < 15; i++) grid.setFunction(14 - i, 8, bit(bits, i));
    for (i = 0; i < 8; i++) grid.setFunction(size - 1 - i, 8, bit(bits, i));
    for (i = 8; i < 15; i++) grid.setFunction(8, size - 15 + i, bit(bits, i));
    grid.setFunction(8, size - 8, true); // the dark module
  }

  function drawVersion(grid, version) {
    if (version < 7) return;
    var rem = version;
    for (var i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    var bits = (version << 12) | rem;
    for (i = 0; i < 18; i++) {
      var a = grid.size - 11 + (i % 3), b = Math.floor(i / 3);
      grid.setFunction(a, b, bit(bits, i));
      grid.setFunction(b, a, bit(bits, i));
    }
  }

  function drawFunctionPatterns(grid, version) {
    var size = grid.size;
    for (var i = 0; i < size; i++) {
      grid.setFunction(6, i, i % 2 === 0);
      grid.setFunction(i, 6, i % 2 === 0);
    }
    drawFinder(grid, 3, 3);
    drawFinder(grid, size - 4, 3);
    drawFinder(grid, 3, size - 4);
    var positions = alignmentPositions(version);
    var last = positions.length - 1;
    positions.forEach(function (row, i) {
      positions.forEach(function (col, j) {
        var onFinder = (i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0);
        if (!onFinder) drawAlignment(grid, col, row);
      });
    });
    drawFormat(grid, 0); // reserves the format area; redrawn with the chosen mask
    drawVersion(grid, version);
  }

  function drawCodewords(grid, codewords) {
    var size = grid.size, i = 0;
    for (var right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5; // skip the vertical timing pattern
      var upward = ((right + 1) & 2) === 0;
      for (var vert = 0; vert < size; vert++) {
        for (var j = 0; j < 2; j++) {
          var col = right - j;
          var row = upward ? size - 1 - vert : vert;
          if (!grid.isFunction[row][col] && i < codewords.length * 8) {
            grid.modules[row][col] = bit(codewords[i >>> 3], 7 - (i & 7));
            i++;
          }
        }
      }
    }
  }

  var MASKS = [
    function (c, r) { return (c + r) % 2 === 0; },
    function (c, r) { return r % 2 === 0; },
    function (c) { return c % 3 === 0; },
    function (c, r) { return (c + r) % 3 === 0; },
    function (c, r) { return (Math.floor(c / 3) + Math.floor(r / 2)) % 2 === 0; },
    function (c, r) { return ((c * r) % 2) + ((c * r) % 3) === 0; },
    function (c, r) { return (((c * r) % 2) + ((c * r) % 3)) % 2 === 0; },
    function (c, r) { return (((c + r) % 2) + ((c * r) % 3)) % 2 === 0; },
  ];

  function applyMask(grid, mask) {
    for (var r = 0; r < grid.size; r++) {
      for (var c = 0; c < grid.size; c++) {
        if (!grid.isFunction[r][c] && MASKS[mask](c, r)) grid.modules[r][c] = !grid.modules[r][c];
      }
    }
  }

  // --- the four penalty rules of the standard, for choosing a mask ---
  function linePenalty(line) {
    var score = 0, run = 1;
    for (var i = 1; i <= line.length; i++) {
      if (i < line.length && line[i] === line[i - 1]) { run++; continue; }
      if (run >= 5) score += 3 + (run - 5);
      run = 1;
    }
    var text = line.map(function (d) { return d ? "1" : "0"; }).join("");
    [/(?=10111010000)/g, /(?=00001011101)/g].forEach(function (pattern) {
      score += 40 * (text.match(pattern) || []).length;
    });
    return score;
  }

  function penalty(grid) {
    var size = grid.size, m = grid.modules, score = 0, dark = 0;
    for (var r = 0; r < size; r++) {
      score += linePenalty(m[r]);
      score += linePenalty(m.map(function (row) { return row[r]; }));
      for (var c = 0; c < size; c++) {
        if (m[r][c]) dark++;
        if (r + 1 < size && c + 1 < size && m[r][c] === m[r][c + 1] &&
            m[r][c] === m[r + 1][c] && m[r][c] === m[r + 1][c + 1]) score += 3;
      }
    }
    var total = size * size;
    score += 10 * Math.floor(Math.abs(dark * 20 - total * 10) / total);
    return score;
  }

  function build(version, codewords, mask) {
    var grid = new Grid(version);
    drawFunctionPatterns(grid, version);
    drawCodewords(grid, codewords);
    applyMask(grid, mask);
    drawFormat(grid, mask);
    return grid;
  }

  function encode(text) {
    var bytes = utf8Bytes(String(text));
    var version = chooseVersion(bytes.length);
    var codewords = withEcc(dataStream(bytes, version), version);
    var best = null, bestMask = 0, bestScore = Infinity;
    for (var mask = 0; mask < MASKS.length; mask++) {
      var grid = build(version, codewords, mask);
      var score = penalty(grid);
      if (score < bestScore) { best = grid; bestMask = mask; bestScore = score; }
    }
    return { version: version, mask: bestMask, size: best.size, modules: best.modules };
  }

  function toSvg(qr, options) {
    var quiet = (options && options.quietZone) || 4;
    var full = qr.size + quiet * 2;
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + full + " " + full);
    svg.setAttribute("shape-rendering", "crispEdges");
    svg.setAttribute("data-version", String(qr.version));
    svg.setAttribute("data-mask", String(qr.mask));
    svg.setAttribute("data-quiet-zone", String(quiet));
    var background = document.createElementNS(ns, "rect");
    background.setAttribute("width", String(full));
    background.setAttribute("height", String(full));
    background.setAttribute("fill", "#ffffff");
    svg.appendChild(background);
    var d = [];
    for (var r = 0; r < qr.size; r++) {
      for (var c = 0; c < qr.size; c++) {
        if (qr.modules[r][c]) d.push("M" + (c + quiet) + " " + (r + quiet) + "h1v1h-1z");
      }
    }
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d.join(""));
    path.setAttribute("fill", "#000000");
    svg.appendChild(path);
    return svg;
  }

  window.TellerQR = { encode: encode, toSvg: toSvg, VERSION_MAX: VERSION_MAX };
})();
