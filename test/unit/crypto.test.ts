/** safeEqual: the same answers as comparing the strings, whatever the characters. */
import { expect, test } from "bun:test";
import { randomToken, safeEqual } from "../../src/lib/crypto";

test("equal strings are equal; any difference, in any position or length, is not", () => {
  const t = randomToken();
  expect(safeEqual(t, t.slice())).toBe(true);
  for (const i of [0, 31, 63]) expect(safeEqual(t, t.slice(0, i) + (t[i] === "a" ? "b" : "a") + t.slice(i + 1))).toBe(false);
  expect(safeEqual(t, t.slice(0, 63))).toBe(false);
  expect(safeEqual("", "")).toBe(true);
  expect(safeEqual("", "a")).toBe(false);
});

test("non-ASCII characters compare as themselves", () => {
  expect(safeEqual("café☕", "café☕")).toBe(true);
  expect(safeEqual("café☕", "cafe☕")).toBe(false);
  expect(safeEqual("\u{1F600}", "\u{1F601}")).toBe(false);
});
