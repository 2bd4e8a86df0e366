// The monitor's own files: the deliverer's status file (written by the
// relay's StatusFile, parsed as untrusted input, shown in /metrics and on
// the status page) and the detectors' saved state (round trip, damaged and
// foreign files, which audit lines the saved state already covers).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>

#include "base/file.hpp"
#include "monitor/detect.hpp"
#include "monitor/monitor.hpp"
#include "relay/deliverer_status.hpp"

namespace sg::monitor {
namespace {

namespace fs = std::filesystem;
constexpr std::int64_t kNow = 1'700'000'000;

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-monitor-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  void set_mtime(const std::string& name, std::int64_t t) {
    timeval tv[2] = {{static_cast<time_t>(t), 0}, {static_cast<time_t>(t), 0}};
    ASSERT_EQ(::utimes((dir_ / name).c_str(), tv), 0);
  }
  fs::path dir_;
};

// What Deliverer::status() serves, trimmed to one upstream.
nlohmann::json deliverer_status(int open, int busy, std::int64_t error_at = 0) {
  return {{"ok", true},
          {"pid", 42},
          {"queue", {{"in_delivery", busy}}},
          {"upstreams",
           {{{"name", "ses"},
             {"host", "email-smtp.example"},
             {"sessions_open", open},
             {"sessions_busy", busy},
             {"max_connections", 2},
             {"send_rate_now", 7.5},
             {"max_send_rate", 14},
             {"last_error", error_at ? "421 4.3.0 try\nlater <b>" : ""},
             {"last_error_at", error_at},
             {"credential", "ses"},
             {"credential_version", kNow - 86400}}}}};
}

TEST(DelivererStatus, ParsesWhatTheDelivererWrites) {
  auto r = parse_deliverer_status(deliverer_status(2, 1, kNow - 5).dump());
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const auto& u = r->front();
  EXPECT_EQ(u.name, "ses");
  EXPECT_EQ(u.open, 2);
  EXPECT_EQ(u.busy, 1);
  EXPECT_EQ(u.max, 2);
  EXPECT_DOUBLE_EQ(u.send_rate_limit, 7.5);
  EXPECT_EQ(u.last_error_at, kNow - 5);
  EXPECT_EQ(u.last_error, "421 4.3.0 try later <b>");  // one line
  EXPECT_EQ(u.credential, "ses");
  EXPECT_EQ(u.credential_version, kNow - 86400);
}

TEST(DelivererStatus, RefusesOrClampsHostileInput) {
  for (const std::string bad :
       {"", "not json", "[]", "{}", R"({"upstreams":{}})", R"({"upstreams":[1]})",
        R"({"upstreams":[{"name":""}]})", R"({"upstreams":[{"name":7}]})"})
    EXPECT_FALSE(parse_deliverer_status(bad)) << bad;
  std::string deep =
      R"({"upstreams":[)" + std::string(100000, '[') + std::string(100000, ']') + "]}";
  EXPECT_FALSE(parse_deliverer_status(deep));
  nlohmann::json many = {{"upstreams", nlohmann::json::array()}};
  for (int i = 0; i < 65; ++i) many["upstreams"].push_back({{"name", "u" + std::to_string(i)}});
  EXPECT_FALSE(parse_deliverer_status(many.dump()));
  EXPECT_FALSE(parse_deliverer_status(std::string(kDelivererStatusMaxSize + 1, ' ')));

  auto r = parse_deliverer_status(
      R"({"upstreams":[{"name":"x","sessions_open":-5,"sessions_busy":1e300,)"
      R"("max_connections":"2","send_rate_now":-1,"last_error_at":1.5e20,)"
      R"("last_error":")" +
      std::string(5000, 'e') + R"("}]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->front().open, 0);
  EXPECT_EQ(r->front().busy, 1'000'000);
  EXPECT_EQ(r->front().max, 0);
  EXPECT_EQ(r->front().send_rate_limit, 0);
  EXPECT_EQ(r->front().last_error_at, std::int64_t(1) << 40);
  EXPECT_EQ(r->front().last_error.size(), 512u);
}

TEST_F(TempDir, StatusFileRoundTripStaleAndMissing) {
  auto missing = read_deliverer_status(dir_, kNow);
  EXPECT_FALSE(missing.exists);
  EXPECT_FALSE(missing.valid);

  relay::StatusFile file(dir_ / kDelivererStatusFile);
  EXPECT_TRUE(file.update(deliverer_status(1, 0), kNow));
  EXPECT_FALSE(file.update(deliverer_status(2, 1), kNow));      // at most once a second
  EXPECT_TRUE(file.update(deliverer_status(2, 1), kNow + 1));   // changed
  EXPECT_FALSE(file.update(deliverer_status(2, 1), kNow + 2));  // unchanged
  EXPECT_FALSE(file.update(deliverer_status(2, 1), kNow + 1 + kDelivererStatusHeartbeat - 1));
  EXPECT_TRUE(file.update(deliverer_status(2, 1), kNow + 1 + kDelivererStatusHeartbeat));
  EXPECT_FALSE(fs::exists(dir_ / (std::string(kDelivererStatusFile) + ".tmp")));
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / kDelivererStatusFile).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  set_mtime(kDelivererStatusFile, kNow - 3);
  auto fresh = read_deliverer_status(dir_, kNow);
  EXPECT_TRUE(fresh.exists);
  ASSERT_TRUE(fresh.valid) << fresh.error;
  EXPECT_EQ(fresh.age, 3);
  ASSERT_EQ(fresh.upstreams.size(), 1u);
  EXPECT_EQ(fresh.upstreams[0].open, 2);
  EXPECT_EQ(fresh.upstreams[0].busy, 1);

  set_mtime(kDelivererStatusFile, kNow - kDelivererStatusStale - 1);
  auto stale = read_deliverer_status(dir_, kNow);
  EXPECT_TRUE(stale.exists);
  EXPECT_FALSE(stale.valid);
  EXPECT_TRUE(stale.upstreams.empty());

  write(kDelivererStatusFile, "{\"upstreams\": [");  // torn or planted
  set_mtime(kDelivererStatusFile, kNow);
  auto broken = read_deliverer_status(dir_, kNow);
  EXPECT_TRUE(broken.exists);
  EXPECT_FALSE(broken.valid);

  fs::remove(dir_ / kDelivererStatusFile);
  ASSERT_EQ(::mkfifo((dir_ / kDelivererStatusFile).c_str(), 0600), 0);  // must not hang
  EXPECT_FALSE(read_deliverer_status(dir_, kNow).valid);
}

Snapshot with_status(DelivererStatus d) {
  Snapshot s;
  s.now = kNow;
  s.upstreams = {{"ses", "ses", 14}};
  s.deliverer = std::move(d);
  return s;
}

TEST(DelivererStatus, MetricsAndStatusPage) {
  DelivererStatus d;
  d.exists = d.valid = true;
  d.age = 2;
  d.upstreams = *parse_deliverer_status(deliverer_status(2, 1, kNow - 90).dump());
  d.upstreams.push_back({"not-configured", 9, 9, 9});
  Snapshot s = with_status(d);
  std::string m = render_metrics(s);
  for (const char* expected : {
           "# TYPE smtpguard_deliverer_status_age_seconds gauge\n",
           "smtpguard_deliverer_status_age_seconds 2\n",
           "smtpguard_upstream_sessions{upstream=\"ses\",state=\"open\"} 2\n",
           "smtpguard_upstream_sessions{upstream=\"ses\",state=\"busy\"} 1\n",
           "smtpguard_upstream_max_sessions{upstream=\"ses\"} 2\n",
           "smtpguard_upstream_send_rate_limit{upstream=\"ses\"} 7.5\n",
           "smtpguard_upstream_last_error_timestamp_seconds{upstream=\"ses\"} 1699999910\n",
           "smtpguard_upstream_credential_version_timestamp_seconds{upstream=\"ses\","
           "credential=\"ses\"} 1699913600\n",
       })
    EXPECT_NE(m.find(expected), std::string::npos) << expected << "\n---\n" << m;
  EXPECT_EQ(m.find("not-configured"), std::string::npos);  // only configured upstreams

  std::string html = render_status_page(s);
  EXPECT_NE(html.find("data-open=\"2\" data-busy=\"1\">2 open, 1 busy of 2"), std::string::npos)
      << html;
  EXPECT_NE(html.find("90 s ago: 421 4.3.0 try later &lt;b&gt;"), std::string::npos) << html;
  EXPECT_EQ(html.find("later <b>"), std::string::npos);

  // Missing or stale: the age gauge, no upstream gauges, a note on the page.
  DelivererStatus none;
  none.error = "no status file";
  m = render_metrics(with_status(none));
  EXPECT_NE(m.find("smtpguard_deliverer_status_age_seconds +Inf\n"), std::string::npos) << m;
  EXPECT_EQ(m.find("smtpguard_upstream_sessions{"), std::string::npos);
  EXPECT_EQ(m.find("smtpguard_upstream_max_sessions{"), std::string::npos);
  DelivererStatus stale;
  stale.exists = true;
  stale.age = 100;
  stale.upstreams = d.upstreams;  // valid == false: not shown
  m = render_metrics(with_status(stale));
  EXPECT_NE(m.find("smtpguard_deliverer_status_age_seconds 100\n"), std::string::npos);
  EXPECT_EQ(m.find("smtpguard_upstream_sessions{"), std::string::npos);
  html = render_status_page(with_status(none));
  EXPECT_NE(html.find("sessions unknown: no status file"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Saved detector state.

Event submission(std::int64_t t, const std::string& identity, const std::string& sender) {
  Event e;
  e.time = t;
  e.kind = EventKind::received;
  e.identity = identity;
  e.sender = sender;
  e.recipient_count = 1;
  e.remote = "127.0.0.1";
  return e;
}

// Two days of a steady identity, so hours have been learned.
Detectors trained() {
  Detectors d;
  for (std::int64_t t = kNow - 2 * 86400; t < kNow; t += 120) {
    d.observe(submission(t, "shop", "app@shop.example"));
    d.tick(t + 60);
  }
  d.observe(submission(kNow, "blog", "wp@blog.example"));
  return d;
}

TEST_F(TempDir, DetectorStateRoundTrip) {
  Detectors d = trained();
  const auto path = dir_ / kDetectorStateFile;
  ASSERT_TRUE(save_detector_state(path, d, {1234, kNow}, kNow + 5));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = read_file(path);
  ASSERT_TRUE(text);
  auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["format"], "smtpguard-monitor-state");
  EXPECT_EQ(j["saved_at"], kNow + 5);

  Detectors loaded;
  auto position = load_detector_state(path, loaded);
  ASSERT_TRUE(position) << position.error().message;
  EXPECT_EQ(position->seq, 1234u);
  EXPECT_EQ(position->time, kNow);
  EXPECT_EQ(loaded.to_json(), d.to_json());
  bool found = false;
  const nlohmann::json saved = loaded.to_json();
  for (const auto& id : saved["identities"])
    if (id["name"] == "shop") {
      found = true;
      EXPECT_EQ(id["first_seen"], kNow - 2 * 86400);
      EXPECT_EQ(id["senders"], nlohmann::json::array({"app@shop.example"}));
    }
  EXPECT_TRUE(found) << saved.dump().substr(0, 2000);
}

TEST_F(TempDir, DamagedForeignOrMissingStateChangesNothing) {
  Detectors d = trained();
  const nlohmann::json before = d.to_json();
  const auto path = dir_ / kDetectorStateFile;
  auto missing = load_detector_state(path, d);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);

  auto good = nlohmann::json::parse(encode_detector_state(Detectors(), {7, kNow}, kNow));
  std::vector<std::string> bad = {"", "{\"format\":", "[1,2]", "\x01\x02\xff garbage",
                                  std::string(10000, '[')};
  auto with = [&](const char* key, nlohmann::json value) {
    auto j = good;
    j[key] = std::move(value);
    return j.dump();
  };
  bad.push_back(with("format", "smtpguard-detect-baseline"));  // foreign format
  bad.push_back(with("audit", {{"seq", -1}, {"time", kNow}}));
  bad.push_back(with("audit", "x"));
  bad.push_back(with("detectors", {{"format", "smtpguard-detect-baseline"}, {"version", 2}}));
  bad.push_back(with("detectors", {{"format", "smtpguard-detect-baseline"},
                                   {"version", 1},
                                   {"identities", {{{"name", "x"}}}}}));
  for (const auto& text : bad) {
    write(kDetectorStateFile, text);
    auto r = load_detector_state(path, d);
    EXPECT_FALSE(r) << text.substr(0, 80);
    EXPECT_EQ(d.to_json(), before) << text.substr(0, 80);
  }
  // A newer version of the file itself: refused as unsupported.
  write(kDetectorStateFile, with("version", 2));
  auto newer = load_detector_state(path, d);
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().code, Errc::unsupported);
  EXPECT_EQ(d.to_json(), before);
}

TEST(DetectorState, PositionCoversOnlyWhatWasSaved) {
  AuditPosition none;
  EXPECT_FALSE(none.covers(1, kNow - 1000));
  AuditPosition p{100, kNow};
  EXPECT_TRUE(p.covers(100, kNow));
  EXPECT_TRUE(p.covers(5, kNow - 3600));
  EXPECT_FALSE(p.covers(101, kNow));      // written after the save
  EXPECT_FALSE(p.covers(101, kNow - 2));  // ... even with an older time (two writers)
  EXPECT_FALSE(p.covers(3, kNow + 10));   // a replaced log starts at seq 1 again
  EXPECT_TRUE(p.covers(0, kNow - 1));     // a line without seq: by time
  EXPECT_FALSE(p.covers(0, kNow + 1));
}

}  // namespace
}  // namespace sg::monitor
