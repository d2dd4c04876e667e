-- wrk script: every request is a distinct, valid FileUploadComplete event
-- for its own media (thread id + counter), so nothing is a duplicate.
-- BENCH_SEGMENT (a short tag, e.g. "03") keeps the media of successive wrk
-- runs against one server distinct (the interleaved mode's bursts).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local n = 0
local segment = os.getenv("BENCH_SEGMENT") or ""
function request()
  n = n + 1
  local media = string.format("m%s%02d%014d", segment, tid, n)
  local body = string.format(
    '{"EventType":"FileUploadComplete","UserId":1833220977560785,"EventTime":"2026-01-01T00:00:00Z",' ..
    '"MessageBody":{"Status":"Success","FileUrl":"https://b.oss-cn-shanghai.aliyuncs.com/sv/%s.mp4",' ..
    '"MediaId":"%s","AppId":"app-1000000","Size":"5510872","MediaType":"video"}}', media, media)
  return wrk.format("POST", "/", {["Content-Type"] = "application/json"}, body)
end

dofile("scripts/bench/report.lua")
