-- wrk script: every request is a distinct MediaBaseChangeComplete of ONE
-- media (distinct title and time), so all writers contend on one key.
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local n = 0
function request()
  n = n + 1
  local seconds = tid * 100000000 + n
  local time = string.format("2026-01-%02dT%02d:%02d:%02d.%03dZ", 1 + tid, math.floor(n / 3600000) % 24,
    math.floor(n / 60000) % 60, math.floor(n / 1000) % 60, n % 1000)
  local content = string.format('{\\"Title\\":\\"{\\\\\\"OldValue\\\\\\":\\\\\\"\\\\\\",\\\\\\"NewValue\\\\\\":\\\\\\"t%d\\\\\\"}\\"}', seconds)
  local body = string.format(
    '{"EventType":"MediaBaseChangeComplete","UserId":1,"EventTime":"%s","MessageBody":' ..
    '{"Status":"Success","MediaId":"hot-media","MediaType":"video","OperateMode":"update","MediaContent":"%s"}}',
    time, content)
  return wrk.format("POST", "/", {["Content-Type"] = "application/json"}, body)
end

dofile("scripts/bench/report.lua")
