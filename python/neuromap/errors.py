"""errors — what neuromap raises. Every exception is a neuromap.Error.

    Error                       base class; .code is the CLI's exit status, .message its line
      InputError (ValueError)   code 2: a bad argument or input file (the CLI's exit 2)
        NeuronIndexError (IndexError)  a layer, neuron or token id outside the model
      RunError (RuntimeError)   code 1: something failed while running (the CLI's exit 1)

The message is the one line the CLI prints after "neuromap: ".
"""


class Error(Exception):
    """A neuromap failure: .code (1 runtime, 2 bad input) and .message."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.message, self.code = message, code


class InputError(Error, ValueError):
    """A bad argument or input (the CLI's exit status 2)."""

    def __init__(self, message):
        super().__init__(message, 2)


class NeuronIndexError(InputError, IndexError):
    """A layer, neuron or token id outside the model."""


class RunError(Error, RuntimeError):
    """A failure while running (the CLI's exit status 1)."""

    def __init__(self, message):
        super().__init__(message, 1)


def raise_error(code, message):
    if code == 2:
        raise InputError(message)
    raise RunError(message)
