/* alphabet.h — GPT-2's byte-level alphabet (OpenAI's bytes_to_unicode()).
 *
 * Byte-level BPE (GPT-2, Llama 3) spells every byte as a visible character,
 * so that each piece of its vocabulary is printable text: the 188 printable
 * bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves, and the other
 * 68 (0x00..0x20, 0x7F..0xA0, 0xAD) take U+0100..U+0143 in byte order. Space,
 * 0x20, is the 33rd of those, U+0120: the "Ġ" of "Ġdog". The vocabulary reads
 * pieces back to bytes with it, the tokenizer spells text in it, and synth
 * builds its vocabulary from it: one definition, in model/vocab.c.
 */
#ifndef NEUROMAP_ALPHABET_H
#define NEUROMAP_ALPHABET_H

#include <stdint.h>

/* The character (code point, U+0021..U+0143) that stands for byte b. */
unsigned byte_level_char(uint8_t b);
/* The byte that character cp stands for, or -1 when cp is not in the alphabet. */
int byte_level_byte(unsigned cp);

#endif
