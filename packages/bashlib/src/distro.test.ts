import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it, test } from "node:test";
import { tempDir } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";

const OS_RELEASES: Record<string, string> = {
  ubuntu: 'NAME="Ubuntu"\nVERSION="24.04.1 LTS (Noble Numbat)"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n',
  debian: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
  mint: 'NAME="Linux Mint"\nVERSION="21.3 (Virginia)"\nID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="21.3"\nVERSION_CODENAME=virginia\n',
  fedora: 'NAME="Fedora Linux"\nVERSION="40 (Workstation Edition)"\nID=fedora\nVERSION_ID=40\nVERSION_CODENAME=""\n',
  centos: 'NAME="CentOS Stream"\nVERSION="9"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\n',
  rocky: 'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n',
  rhel: 'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n',
  openeuler: 'NAME="openEuler"\nVERSION="22.03 (LTS-SP1)"\nID="openEuler"\nVERSION_ID="22.03"\n',
  arch: 'NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n',
};

test("distro helpers - GetOSVersion, GetDistro, is_ubuntu, is_fedora", async (t) => {
  using dir = tempDir("sb-distro-");
  for (const [name, text] of Object.entries(OS_RELEASES)) writeFileSync(join(dir.path, name), text);

  const describeHost = (name: string) =>
    bashOut(
      'GetDistro\necho "$os_VENDOR|$os_RELEASE|$os_CODENAME|$os_PACKAGE|$DISTRO|$(is_ubuntu && echo ubuntu)|$(is_fedora && echo fedora)"',
      { env: { STACKBUS_OS_RELEASE: join(dir.path, name) } },
    );

  const expected: Array<[string, string]> = [
    ["ubuntu", "Ubuntu|24.04|noble|deb|noble|ubuntu|"],
    ["debian", "Debian|12|bookworm|deb|bookworm|ubuntu|"],
    ["mint", "LinuxMint|21.3|virginia|deb|virginia|ubuntu|"],
    ["fedora", "Fedora|40|n/a|rpm|f40||fedora"],
    ["centos", "CentOSStream|9|n/a|rpm|rhel9||fedora"],
    ["rocky", "RockyLinux|9.4|Blue Onyx|rpm|rhel9||fedora"],
    ["rhel", "RedHatEnterpriseLinux|9.4|Plow|rpm|rhel9||fedora"],
    ["openeuler", "openEuler|22.03|n/a|rpm|openEuler-22.03||fedora"],
  ];
  for (const [name, line] of expected) {
    await t.test(`GetDistro - ${name}: vendor|release|codename|package|DISTRO|is_ubuntu|is_fedora = ${line}`, async () => {
      assert.equal(await describeHost(name), line);
    });
  }

  await t.test("GetDistro - an unknown distribution dies with DevStack's message; is_ubuntu and is_fedora are both false", async () => {
    const env = { STACKBUS_OS_RELEASE: join(dir.path, "arch") };
    const run = await bash("GetDistro\necho not-reached", { env });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /\[ERROR\] main:1 Unable to determine DISTRO, can not continue\./);
    assert.equal(await bashOut("is_ubuntu || is_fedora || echo neither", { env }), "neither");
  });

  await t.test("exit_distro_not_supported - dies naming the distribution and what is missing", async () => {
    const run = await bash("exit_distro_not_supported 'installing packages'", { env: { STACKBUS_OS_RELEASE: join(dir.path, "ubuntu") } });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /\[ERROR\] main:1 Support for noble is incomplete: no support for installing packages$/m);
  });

  await t.test("GetOSVersion - does not leak os-release's NAME, ID or VERSION into the shell", async () => {
    const out = await bashOut('GetOSVersion; echo "[${NAME:-}][${ID:-}][${VERSION:-}]"', { env: { STACKBUS_OS_RELEASE: join(dir.path, "ubuntu") } });
    assert.equal(out, "[][][]");
  });

  await t.test("GetOSVersion - on this host os_RELEASE is os-release's VERSION_ID and os_PACKAGE follows the dpkg database", async () => {
    const text = readFileSync("/etc/os-release", "utf8");
    const versionId = /^VERSION_ID="?([^"\n]*)"?$/m.exec(text)?.[1] ?? "n/a";
    const out = await bashOut('GetOSVersion; echo "$os_RELEASE $os_PACKAGE"');
    assert.equal(out, `${versionId} ${existsSync("/var/lib/dpkg/status") ? "deb" : "rpm"}`);
  });

  await t.test("is_arch - compares with uname -m", async () => {
    assert.equal(await bashOut('is_arch "$(uname -m)" && echo yes; is_arch no-such-arch || echo no'), "yes\nno");
  });
});

describe("package helpers", () => {
  it("is_package_installed - bash and dpkg are installed, alone and together; a nonsense name is not; no name is not", async () => {
    const out = await bashOut(
      "for p in bash dpkg 'bash dpkg' zzzZZZzzz 'bash zzzZZZzzz' ''; do is_package_installed $p && echo \"[$p] yes\" || echo \"[$p] no\"; done",
    );
    assert.deepEqual(out.split("\n"), ["[bash] yes", "[dpkg] yes", "[bash dpkg] yes", "[zzzZZZzzz] no", "[bash zzzZZZzzz] no", "[] no"]);
  });

  it("commands run for apt and dnf (apt-get, dnf and sudo replaced by recorders on PATH)", async (t) => {
    using dir = tempDir("sb-pkg-");
    const log = join(dir.path, "calls.log");
    {
      const bin = join(dir.path, "bin");
      mkdirSync(bin);
      const recorder = (name: string, extra = "") =>
        `#!/bin/bash\necho "${name} DEBIAN_FRONTEND=\${DEBIAN_FRONTEND:-} http_proxy=\${http_proxy:-} $*" >> ${q(log)}\n${extra}exit 0\n`;
      writeFileSync(join(bin, "apt-get"), recorder("apt-get", `if [[ $* == *install*fail-once* && ! -e ${q(join(dir.path, "failed"))} ]]; then touch ${q(join(dir.path, "failed"))}; exit 100; fi\n`));
      writeFileSync(join(bin, "dnf"), recorder("dnf"));
      writeFileSync(join(bin, "sudo"), '#!/bin/bash\nexec "$@"\n');
      for (const f of ["apt-get", "dnf", "sudo"]) chmodSync(join(bin, f), 0o755);
      writeFileSync(join(dir.path, "ubuntu"), OS_RELEASES["ubuntu"] ?? "");
      writeFileSync(join(dir.path, "fedora"), OS_RELEASES["fedora"] ?? "");
    }

    async function calls(osRelease: string, script: string): Promise<string[]> {
      writeFileSync(log, "");
      await bashOut(script, {
        env: { PATH: `${join(dir.path, "bin")}:${process.env["PATH"] ?? ""}`, STACKBUS_OS_RELEASE: join(dir.path, osRelease), http_proxy: "http://proxy:3128" },
      });
      return readFileSync(log, "utf8").split("\n").filter((l) => l !== "");
    }

    await t.test("install_package - on apt: one apt-get update, then a non-interactive, confold, assume-yes install with the proxy", async () => {
      assert.deepEqual(await calls("ubuntu", "install_package foo bar\ninstall_package baz"), [
        "apt-get DEBIAN_FRONTEND= http_proxy=http://proxy:3128 update",
        "apt-get DEBIAN_FRONTEND=noninteractive http_proxy=http://proxy:3128 --option Dpkg::Options::=--force-confold --assume-yes install foo bar",
        "apt-get DEBIAN_FRONTEND=noninteractive http_proxy=http://proxy:3128 --option Dpkg::Options::=--force-confold --assume-yes install baz",
      ]);
    });

    await t.test("install_package - a failed install refreshes the index and retries once", async () => {
      const seen = await calls("ubuntu", "REPOS_UPDATED=True\ninstall_package fail-once");
      assert.deepEqual(
        seen.map((l) => l.split(" ").at(-1)),
        ["fail-once", "update", "fail-once"],
      );
    });

    await t.test("install_package / uninstall_package - on dnf: dnf install -y and dnf remove -y, no index refresh", async () => {
      assert.deepEqual(await calls("fedora", "install_package foo\nuninstall_package foo"), [
        "dnf DEBIAN_FRONTEND= http_proxy=http://proxy:3128 install -y foo",
        "dnf DEBIAN_FRONTEND= http_proxy=http://proxy:3128 remove -y foo",
      ]);
    });

    await t.test("uninstall_package - on apt: apt-get purge", async () => {
      const seen = await calls("ubuntu", "uninstall_package foo");
      assert.equal(seen.length, 1);
      assert.match(seen[0] ?? "", /--assume-yes purge foo$/);
    });

    await t.test("OFFLINE=True and NO_UPDATE_REPOS=True - nothing is run", async () => {
      assert.deepEqual(await calls("ubuntu", "OFFLINE=True\ninstall_package foo\napt_get_update\nyum_install foo"), []);
      assert.deepEqual(await calls("ubuntu", "NO_UPDATE_REPOS=True\nupdate_package_repo"), []);
    });
  });
});
