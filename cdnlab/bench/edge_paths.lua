-- wrk script of `cdnlab bench edge` (cdnlab/bench/edge.py): each thread walks its own share
-- of a URL list, in turn; arguments: the list's path, 1 to ask each URL once (the thread
-- stops when its share is done) or 0 to cycle, and the number of threads. Responses whose
-- X-Cache-Status is MISS are counted. done() prints one JSON line of figures.
local threads = {}
local created = 0

function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  local all = {}
  for line in io.lines(args[1]) do all[#all + 1] = line end
  local total = tonumber(args[3])
  mine = {}
  for i = id + 1, #all, total do mine[#mine + 1] = all[i] end
  once = args[2] == "1"
  index = 0
  misses = 0
end

function request()
  index = index + 1
  if index > #mine then
    if once then wrk.thread:stop() end
    index = 1
  end
  return wrk.format("GET", mine[index])
end

function response(status, headers, body)
  if headers["X-Cache-Status"] == "MISS" then misses = misses + 1 end
end

function done(summary, latency, requests)
  local missed = 0
  for _, thread in ipairs(threads) do missed = missed + (thread:get("misses") or 0) end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "bytes": %d, "duration_us": %d, "errors": %d, "misses": %d}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, missed))
end
