"""examples/hello-python -- the smallest Python function: answers "hello, <payload>"
("hello, world" for an empty one). Started as `python3 /opt/ember/ember_fn.py handler.handler`."""


def handler(event, context):
    return b"hello, " + (event or b"world")
