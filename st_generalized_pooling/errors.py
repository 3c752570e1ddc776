"""The one exception type for errors a user can cause (bad model, file, argument or token)."""


class GeneralizedPoolingError(ValueError):
    """A problem with the user's input; the message names the file, line or value at fault."""


class ConversionError(GeneralizedPoolingError):
    """The model cannot be converted (no mean pooling, or already converted)."""


class UnsafeModelError(GeneralizedPoolingError):
    """``load_model`` refused a model that would need code from its folder or repo."""
