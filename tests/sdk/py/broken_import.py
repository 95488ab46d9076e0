"""Fails at import (the function's init): the SDK must answer INIT_ERROR."""

print("loading the model")


class ModelError(Exception):
    pass


raise ModelError("cannot load the model: weights.bin is missing")
