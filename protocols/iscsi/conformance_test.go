package iscsi

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/scsi"
)

// conformanceTimeout bounds one iscsi-test-cu run (about two minutes here:
// the CmdSN and DataSN tests each wait out libiscsi's 3 s timeouts).
const conformanceTimeout = 15 * time.Minute

// conformanceTestsMin is how many tests libiscsi 1.19's ALL family holds;
// a run that counts fewer matched or ran less than the suite.
const conformanceTestsMin = 230

// cuResult is what one iscsi-test-cu run counted.
type cuResult struct {
	total, passed, failed, skipped int
	failures, skips                []string
}

var (
	// CUnit's summary line: "tests  230  230  222  8  0".
	cuTests = regexp.MustCompile(`(?m)^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`)
	// Where a test's section starts: "  Test: Simple ...".
	cuTest = regexp.MustCompile(`(?m)^  Test: (\S+) \.\.\.`)
	// Where a suite starts, and where the summary starts.
	cuSuite = regexp.MustCompile(`(?m)^Suite: (\S+)|^Run Summary`)
	// CUnit's verdict of a failed test: "FAILED" alone on a line, or right
	// after the test's name.
	cuFailed = regexp.MustCompile(`(?m)^FAILED\s*$|^  Test: \S+ \.\.\.FAILED`)
)

// parseCU counts a run: CUnit's totals, and as skipped the passed tests
// whose section logged [SKIPPED] (CUnit counts a skip as a pass).
func parseCU(out string) cuResult {
	var r cuResult
	if m := cuTests.FindStringSubmatch(out); m != nil {
		r.total, _ = strconv.Atoi(m[2])
		r.passed, _ = strconv.Atoi(m[3])
		r.failed, _ = strconv.Atoi(m[4])
	}
	suite := ""
	suites := cuSuite.FindAllStringSubmatchIndex(out, -1)
	tests := cuTest.FindAllStringSubmatchIndex(out, -1)
	for i, m := range tests {
		end := len(out)
		if i+1 < len(tests) {
			end = tests[i+1][0]
		}
		for _, s := range suites {
			switch {
			case s[0] < m[0] && s[2] >= 0:
				suite = out[s[2]:s[3]]
			case s[0] > m[0] && s[0] < end:
				end = s[0]
			}
		}
		body := out[m[0]:end]
		name := suite + "." + out[m[2]:m[3]]
		switch {
		case cuFailed.MatchString(body):
			r.failures = append(r.failures, name)
		case strings.Contains(body, "[SKIPPED]"):
			r.skipped++
			r.skips = append(r.skips, name)
		}
	}
	return r
}

// TestConformance runs libiscsi's conformance suite, iscsi-test-cu
// --dataloss --test=ALL, against a thick and a thin-provisioned malloc LUN,
// each in its own iscsi-test-cu process (a failed COMPARE AND WRITE test
// leaves libiscsi's CDB hook installed for the rest of the process). It
// wants every test to pass and fewer skips than tgt 1.0.85 (62 on a thick
// LUN on this machine).
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suite: plain test pass only")
	}
	needTool(t, "iscsi-test-cu")
	for _, tc := range []struct {
		name string
		lun  scsi.Config
	}{
		{"thick", scsi.Config{}},
		{"thin", scsi.Config{Thin: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := newTarget(t, targetOptions{luns: []scsi.Config{tc.lun}})
			ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
			defer cancel()
			args := []string{"--dataloss", "--test=ALL", tt.url(0, "", "")}
			if one := os.Getenv("SLUICE_CU_TEST"); one != "" {
				// A developer's rerun of some tests, verbose: counts are not checked.
				args = []string{"--dataloss", "-V", "--test=" + one, tt.url(0, "", "")}
			}
			cmd := exec.CommandContext(ctx, "iscsi-test-cu", args...)
			out, err := cmd.CombinedOutput()
			log := filepath.Join(t.TempDir(), "iscsi-test-cu.log")
			if dir := os.Getenv("SLUICE_CONFORMANCE_LOG"); dir != "" {
				log = filepath.Join(dir, "iscsi-test-cu-"+tc.name+".log")
			}
			os.WriteFile(log, out, 0o644)
			r := parseCU(string(out))
			t.Logf("%s LUN: %d tests, %d passed (%d of them skipped), %d failed; log %s",
				tc.name, r.total, r.passed, r.skipped, r.failed, log)
			if err != nil && r.total == 0 {
				t.Fatalf("iscsi-test-cu: %v\n%s", err, tail(string(out), 40))
			}
			if os.Getenv("SLUICE_CU_TEST") != "" {
				t.Logf("%s", out)
				return
			}
			if r.total < conformanceTestsMin {
				t.Errorf("ran %d tests, want at least %d (did the suite match?)", r.total, conformanceTestsMin)
			}
			if r.failed != 0 || len(r.failures) != 0 {
				t.Errorf("%d failed: %v", r.failed, r.failures)
			}
			t.Logf("skipped: %v", r.skips)
			if r.skipped >= 62 {
				t.Errorf("%d skipped, want fewer than tgt's 62", r.skipped)
			}
		})
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// TestParseCU pins the parser on CUnit's verbose output shapes.
func TestParseCU(t *testing.T) {
	out := `Suite: CompareAndWrite
  Test: Simple ...    [FAILED] COMPAREANDWRITE successful
    [FAILED] again
FAILED
    1. test_compareandwrite_simple.c:71  - CU_ASSERT_EQUAL(_r,0)
  Test: DpoFua ...passed
  Test: InvalidDataOutSize ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
passed
Suite: MultipathIO
  Test: Simple ...    [SKIPPED] Multipath unavailable. Skipping test
passed
  Test: Reset ...FAILED
    1. x.c:1 - y

Run Summary:    Type  Total    Ran Passed Failed Inactive
              suites     2     2    n/a      0        0
               tests    5    5    3      2        0
`
	r := parseCU(out)
	want := cuResult{total: 5, passed: 3, failed: 2, skipped: 2,
		failures: []string{"CompareAndWrite.Simple", "MultipathIO.Reset"},
		skips:    []string{"CompareAndWrite.InvalidDataOutSize", "MultipathIO.Simple"}}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("parseCU = %+v, want %+v", r, want)
	}
}
