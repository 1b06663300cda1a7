"""The limits the controls offer, each defined once: the Lab enforces them,
the control room's sliders end at them, and the bench measures at them."""

MAX_WORKERS = 8  # workers of one role in a Lab (order_details has 6 partitions by default: two more sit idle)
MAX_RATE = 2000  # orders per second: the top of the control room's rate slider
