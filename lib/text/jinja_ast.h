// jinja_ast.h — the syntax tree jinja_parse.c builds and jinja_eval.c walks (internal to them).
#ifndef DS_JINJA_AST_H
#define DS_JINJA_AST_H

#include <jansson.h>

#include "text/jinja.h"

typedef enum {
    // expressions
    JN_LIT,    // lit
    JN_NAME,   // str
    JN_LIST,   // kid[] elements
    JN_TUPLE,  // kid[] elements
    JN_DICT,   // kid[2i] key, kid[2i+1] value
    JN_ATTR,   // kid[0] object, str attribute
    JN_INDEX,  // kid[0] object, kid[1] index
    JN_SLICE,  // kid[0] object, kid[1..3] start, stop, step (each may be NULL)
    JN_CALL,   // kid[0] callee, kid[1..] arguments (argname[i] for keywords, else NULL)
    JN_FILTER, // str filter, kid[0] operand, kid[1..] arguments (argname as for calls)
    JN_TEST,   // str test, op 1 = "is not", kid[0] operand, kid[1..] arguments
    JN_UNARY,  // op ('!' not, '-' negate, '+'), kid[0]
    JN_BINARY, // op (JOP_*), kid[0], kid[1]
    JN_COND,   // kid[0] value, kid[1] condition, kid[2] else value (NULL: undefined)
    // statements
    JN_BODY,   // kid[] statements in order
    JN_TEXT,   // lit (a string)
    JN_OUTPUT, // kid[0] expression
    JN_IF,     // kid[0] condition, kid[1] body, kid[2] else body (NULL; elif is a nested if)
    JN_FOR,    // target[], kid[0] iterable, kid[1] body, kid[2] else body, kid[3] filter (NULLs)
    JN_SET,    // target[], kid[0] value (op 1: kid[0] is a body, {% set x %}...{% endset %})
    JN_SETATTR, // str namespace variable, target[0] attribute, kid[0] value
    JN_BREAK,
    JN_CONTINUE,
    JN_GENERATION, // kid[0] body ({% generation %}: transformers' assistant-mask marker)
} JNodeKind;

enum {
    JOP_OR = 1, JOP_AND, JOP_EQ, JOP_NE, JOP_LT, JOP_GT, JOP_LE, JOP_GE, JOP_IN, JOP_NOTIN,
    JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW, JOP_CONCAT,
};

typedef struct JNode {
    JNodeKind kind;
    int op, line;
    char *str;
    json_t *lit;
    struct JNode **kid;
    char **argname; // parallel to kid: keyword names of call and filter arguments (else NULL)
    char **target;  // names a for or set assigns
    int nkid, ntarget;
} JNode;

struct JinjaTemplate {
    char *name; // for messages
    JNode *root;
};

#endif
