"""Not Python: the SDK must answer INIT_ERROR SyntaxError."""

def handler(event, context)
    return event
