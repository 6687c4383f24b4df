"""The server's defaults, in a module that imports nothing: the CLI declares its flags with them before it imports
torch (so a mistyped model path fails at once), and the loader and the scheduler take the same values."""

MAX_BATCH = 8  # requests decoded together
MAX_QUEUE = 64  # requests waiting for a cache row before the server answers 429
PROMPT_CACHE_MIB = 256  # memory for the keys and values of recent prompts
# Seconds an idle scheduler waits for the next request of a burst (``Scheduler._gather_arrivals``) beside the
# requests the server announced: the server reads and tokenises requests one after another, so a burst arrives
# spread out (benchmarks/README.md). A lone request pays it once.
GATHER_GAP = 0.005
