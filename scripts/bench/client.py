"""One keep-alive connection posting N distinct FileUploadComplete events
(the same events as callback.lua), each answered 200; used by
scripts/ir-per-request.sh.  Usage: client.py PORT N TAG"""
import http.client
import sys

port, n, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    media = "m%s%014d" % (tag, i)
    body = ('{"EventType":"FileUploadComplete","UserId":1833220977560785,"EventTime":"2026-01-01T00:00:00Z",'
            '"MessageBody":{"Status":"Success","FileUrl":"https://b.oss-cn-shanghai.aliyuncs.com/sv/%s.mp4",'
            '"MediaId":"%s","AppId":"app-1000000","Size":"5510872","MediaType":"video"}}') % (media, media)
    conn.request("POST", "/", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit("request %d answered %d" % (i, response.status))
