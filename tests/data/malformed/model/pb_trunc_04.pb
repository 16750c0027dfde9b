
Ñ
in_0Const