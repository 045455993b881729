"""The names of the run's stats (Scrapy's stats collector): every ``woshipm/...`` key and prefix, here once.

A ``_PREFIX`` is followed by a name (a reason, a field, a walk's ending). Schedulers and tests read
these keys from the stats file (``WOSHIPM_STATS_FILE``), so a key, once published, keeps its name.
Nothing here imports anything: every module may use it.
"""

# -- the outcome (summary.py) ---------------------------------------------------------------------
OUTCOME_KEY = "woshipm/outcome"  # "ok" or "FAILED", set when the spider closes
EXIT_CODE_KEY = "woshipm/exit_code"  # what ``scrapy crawl`` exits with (commands/crawl.py)
ALARM_KEY = "woshipm/alarm"  # a coverage alarm's or a failed canary's one line: the run is FAILED
STOP_MESSAGE_KEY = "woshipm/stop_message"  # why the spider stopped itself (a bad argument, a busy state)
CLOSE_FAILURE_KEY = "woshipm/close_failure"  # a pipeline failed to finish (it logged the traceback)
# What the run could not write (set by the state's owner when it closes): the run is FAILED.
PENDING_KEY = "woshipm/pending_outputs"
PENDING_PREFIX = "woshipm/pending/"  # + output kind (jsonl, library): items owed to it
# Set by the state's owner when it closes: [reason, count, next try, last next try] of the failed
# articles that wait for a retry; [listing, page, reason] of the open listing gaps.
RETRY_SCHEDULE_KEY = "woshipm/retry_schedule"
GAPS_KEY = "woshipm/gaps"

# -- failures (summary.count_failure) -------------------------------------------------------------
FAILED_PREFIX = "woshipm/failed/"  # + reason: how many things failed for that reason
EXAMPLE_PREFIX = "woshipm/failed_example/"  # + reason: the first URL that failed for it
# Every article this run asked for and got an answer about (stored, unchanged, older, or failed),
# and those of them that failed, whatever the reason: the run's outcome follows from these two.
ARTICLES_ATTEMPTED_KEY = "woshipm/articles_attempted"
ARTICLES_FAILED_KEY = "woshipm/articles_failed"
ARTICLE_FAILURES_PREFIX = "woshipm/article_failures/"  # + reason: the articles of ARTICLES_FAILED_KEY

# -- listings and the frontier (spiders) ----------------------------------------------------------
LISTING_PAGES_KEY = "woshipm/listing_pages"
EMPTY_LISTINGS_KEY = "woshipm/empty_listings"
CARDS_SEEN_KEY = "woshipm/cards_seen"
ARTICLES_FOUND_NEW_KEY = "woshipm/articles_found_new"
ARTICLES_CROSS_LISTED_KEY = "woshipm/articles_cross_listed"  # in several listings, fetched once
WALKS_PREFIX = "woshipm/walks/"  # + how a walk ended (spiders/base.py)
WALKS_RESUMED_KEY = "woshipm/walks_resumed"
FRONTIER_PREFIX = "woshipm/frontier/"  # + state: articles left in the frontier at the end
FRONTIER_RESUMED_KEY = "woshipm/frontier_resumed"
REQUEUED_KEY = "woshipm/requeued"  # failed articles made due now (-a requeue)
# + why an article was not fetched or not stored: summary.SKIP_REASONS names them
SKIPPED_PREFIX = "woshipm/skipped/"
SKIPPED_UNCHANGED_KEY = SKIPPED_PREFIX + "unchanged"  # fetched again, the same content

# -- articles ---------------------------------------------------------------------------------------
ARTICLES_PARSED_KEY = "woshipm/articles_parsed"
CUT_PREFIX = "woshipm/cut/"  # + field: values cut to their bounds
STATE_PREFIX = "woshipm/state/"  # + the state's verdict on an item (new, changed, ...)
STATE_NEW_KEY = STATE_PREFIX + "new"
STATE_CHANGED_KEY = STATE_PREFIX + "changed"
RECOVERED_KEY = "woshipm/recovered"  # JSONL lines an interrupted run owed, written by this one

# -- outputs ----------------------------------------------------------------------------------------
JSONL_WRITTEN_KEY = "woshipm/jsonl_written"
JSONL_PATH_KEY = "woshipm/jsonl_path"
MARKDOWN_WRITTEN_KEY = "woshipm/markdown_written"  # library files
COVERAGE_PREFIX = "woshipm/coverage/"  # + field: written articles having it
ARCHIVE_RECORDS_KEY = "woshipm/archive/records"  # WARC records written (archive.py)
ARCHIVE_PATH_KEY = "woshipm/archive/path"
ARCHIVE_FAILED_KEY = "woshipm/archive/failed"  # responses the archive could not write: the run is FAILED

# -- coverage alarms (alarms.py) --------------------------------------------------------------------
CHECKED_PREFIX = "woshipm/checked/"  # + field: article pages checked that have it
CHECKED_ARTICLES_KEY = CHECKED_PREFIX + "articles"
FURNITURE_KEY = CHECKED_PREFIX + "furniture_strings"
COVERAGE_ACCEPTED_KEY = "woshipm/coverage_accepted"  # the levels WOSHIPM_ACCEPT_COVERAGE set

# -- revisits and removals (spiders/base.py) ------------------------------------------------------
REVISITS_REQUESTED_KEY = "woshipm/revisits/requested"
REVISITS_DUE_LEFT_KEY = "woshipm/revisits/due_left"
REVISITS_OBSERVED_BEFORE_KEY = "woshipm/revisits/observed_before"
REMOVALS_FOUND_KEY = "woshipm/removals/found"
REMOVALS_MARKED_KEY = "woshipm/removals/marked"
# A large share of the revisits found their article gone: no removal marked, the run is FAILED.
REMOVALS_WITHHELD_KEY = "woshipm/removals/withheld"

# -- backoff (retry.py) -----------------------------------------------------------------------------
BACKOFF_SLOW_DOWNS_KEY = "woshipm/backoff/slow_downs"
BACKOFF_PAUSED_S_KEY = "woshipm/backoff/paused_s"

# -- reparse and canary spiders -------------------------------------------------------------------
REPARSE_PAGES_KEY = "woshipm/reparse/pages"
REPARSE_PARSED_KEY = "woshipm/reparse/parsed"
REPARSE_OLDER_THAN_STORED_KEY = "woshipm/reparse/older_than_stored"
REPARSE_DAMAGED_SEGMENTS_KEY = "woshipm/reparse/damaged_segments"
CANARY_FIELDS_OK_KEY = "woshipm/canary/fields_ok"
