// math_answer.h — final-answer extraction and normalisation for GSM8K ("#### N") and MATH
// (\boxed{}).
#ifndef DS_MATH_ANSWER_H
#define DS_MATH_ANSWER_H

#include <stddef.h>

// ---- MATH ----

// The content of the last \boxed{...} (braces nested), or of the last \fbox{...} when there is no
// \boxed; "\boxed 5" (no braces) gives the text up to the next '$' or newline. Returns 1 and the
// span (inside s) in *out/*n, or 0 when there is none or its braces never close.
int math_last_boxed(const char *s, size_t len, const char **out, size_t *n);

// Normalises an answer the way the MATH benchmark's strip_string does (\frac12 -> \frac{1}{2},
// \dfrac/\tfrac, a/b, \sqrt2 -> \sqrt{2}, \left/\right, "\text{ units}", spaces, ".5" -> "0.5",
// ^\circ, \%, \!, short "x =" prefixes), plus a few extras listed in results/graders.md (trailing
// ".0", \text{X} -> X). Returns a malloc'd string, or NULL where the reference code raises an
// exception (e.g. a trailing "\sqrt"): math_equiv then compares the raw texts, as is_equiv does.
char *math_normalize(const char *s, size_t len);

// is_equiv: normalised strings equal (raw texts equal when either cannot be normalised).
int math_equiv(const char *a, size_t an, const char *b, size_t bn);

// ---- GSM8K ----

// Where a completion's answer is read from.
typedef enum {
    MATH_EXTRACT_DEFAULT,     // the task's own: "####" for gsm8k, \boxed{} for math
    MATH_EXTRACT_HASH,        // after the last "####" (GSM8K's format)
    MATH_EXTRACT_LAST_NUMBER, // the last number anywhere in the text
    MATH_EXTRACT_BOXED,       // the content of the last \boxed{}
    MATH_EXTRACT_ANSWER, // the last <answer>...</answer> (R1 template): its \boxed{}, else it all
} MathExtract;

// "default", "hash", "last-number", "boxed", "answer"
int math_extract_from_name(const char *name, MathExtract *mode);

// The content of the last <answer>...</answer> (may span lines), without surrounding whitespace.
int math_answer_tag(const char *s, size_t len, const char **out, size_t *n);

// The answer text by mode (DEFAULT means \boxed{}): returns 1 and a span of s, or 0 when none.
int math_extract_text(const char *s, size_t len, MathExtract mode, const char **out, size_t *n);

// Parses a number written with optional '$', thousands commas, a leading '-' and a trailing '.'
// ("$1,234.50" -> 1234.5). Returns 1 and *v, or 0 when the text is not such a number.
int math_parse_number(const char *s, size_t len, double *v);

// Extracts a number by mode (DEFAULT means "####"; ANSWER the last number inside the answer tag or
// its \boxed{}). Returns 1 with the value in *v, or 0 when no number is found.
int math_extract_number(const char *s, size_t len, MathExtract mode, double *v);

// Numeric equality with a relative tolerance of 1e-9 ("18" == "18.0").
int math_numbers_equal(double a, double b);

#endif
